import type { CopyEvent } from '../transfer/copy.js';
import { formatBytes } from '../util/bytes.js';

export { formatBytes };

/**
 * Human output on stderr (progress, notes) and results on stdout, so `$(cnab-oci push ...)`
 * captures just the digest. With --json, stdout carries one JSON document.
 */
export class Output {
  constructor(
    readonly json: boolean,
    readonly debugEnabled: boolean,
    private readonly stdout: NodeJS.WritableStream = process.stdout,
    private readonly stderr: NodeJS.WritableStream = process.stderr,
  ) {}

  result(text: string): void {
    if (!this.json) this.stdout.write(`${text}\n`);
  }

  data(value: unknown): void {
    if (this.json) this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  note(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  warn(text: string): void {
    this.stderr.write(`warning: ${text}\n`);
  }

  debug(text: string): void {
    if (this.debugEnabled) this.stderr.write(`debug: ${text}\n`);
  }

  /** Plain progress lines: one per object started/finished, never per chunk. */
  progress(): (event: CopyEvent) => void {
    return (event) => {
      const d = event.descriptor;
      const short = d.digest.slice(0, 19);
      switch (event.type) {
        case 'skip':
          this.stderr.write(`  exists  ${short}  ${formatBytes(d.size)}\n`);
          break;
        case 'mount':
          this.stderr.write(`  mounted ${short}  ${formatBytes(d.size)}\n`);
          break;
        case 'done':
          this.stderr.write(`  copied  ${short}  ${formatBytes(d.size)}\n`);
          break;
        default:
          break;
      }
    };
  }
}

