import type { Descriptor } from '../oci/schemas.js';
import type { CopyEvent } from '../transfer/copy.js';
import { formatBytes } from './output.js';

/**
 * Progress of a transfer of several images. On a TTY: one line per image (bytes done / total)
 * and a total bar, redrawn in place at most ten times a second. Otherwise: one plain line per
 * object copied, mounted or found already there (never per chunk).
 *
 * Each object counts once, for the image that first reached it (a layer shared by two images is
 * moved once and shown once).
 */
export interface Progress {
  onEvent(event: CopyEvent, image: string | undefined): void;
  /** Draw the final state (TTY) and stop redrawing. */
  finish(): void;
}

interface Row {
  label: string;
  total: number;
  done: number;
}

const BUNDLE_LABEL = 'bundle';
const REDRAW_MS = 100;

export function createProgress(stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }): Progress {
  return stream.isTTY ? new TtyProgress(stream) : new PlainProgress(stream);
}

class PlainProgress implements Progress {
  /** digest -> the image that first reached it, for events that come without one. */
  private readonly owner = new Map<string, string>();

  constructor(private readonly stream: NodeJS.WritableStream) {}

  onEvent(event: CopyEvent, image: string | undefined): void {
    const d = event.descriptor;
    if (image !== undefined && !this.owner.has(d.digest)) this.owner.set(d.digest, image);
    const verb = event.type === 'skip' ? 'exists ' : event.type === 'mount' ? 'mounted' : event.type === 'done' ? 'copied ' : undefined;
    if (!verb) return;
    this.stream.write(`  ${verb} ${d.digest.slice(0, 19)}  ${formatBytes(d.size).padStart(9)}  ${this.owner.get(d.digest) ?? BUNDLE_LABEL}\n`);
  }

  finish(): void {}
}

class TtyProgress implements Progress {
  private readonly rows = new Map<string, Row>();
  /** digest -> row it counts for; partial bytes of objects still streaming. */
  private readonly owner = new Map<string, Row>();
  private readonly partial = new Map<string, number>();
  private readonly finished = new Set<string>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly stream: NodeJS.WritableStream & { columns?: number }) {}

  onEvent(event: CopyEvent, image: string | undefined): void {
    const d = event.descriptor;
    const row = this.claim(d, image);
    if (event.type === 'progress') {
      if (this.finished.has(d.digest)) return;
      row.done += event.bytes - (this.partial.get(d.digest) ?? 0);
      this.partial.set(d.digest, event.bytes);
    } else if (event.type === 'skip' || event.type === 'mount' || event.type === 'done') {
      if (this.finished.has(d.digest)) return;
      this.finished.add(d.digest);
      row.done += d.size - (this.partial.get(d.digest) ?? 0);
      this.partial.delete(d.digest);
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, REDRAW_MS);
  }

  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.draw();
  }

  private claim(d: Descriptor, image: string | undefined): Row {
    const known = this.owner.get(d.digest);
    if (known) return known;
    const label = image ?? BUNDLE_LABEL;
    let row = this.rows.get(label);
    if (!row) {
      row = { label, total: 0, done: 0 };
      this.rows.set(label, row);
    }
    row.total += d.size;
    this.owner.set(d.digest, row);
    return row;
  }

  private draw(): void {
    const width = Math.max(40, this.stream.columns ?? 80);
    const rows = [...this.rows.values()];
    const total = rows.reduce((a, r) => a + r.total, 0);
    const done = rows.reduce((a, r) => a + r.done, 0);
    const amount = (r: { done: number; total: number }) => `${formatBytes(r.done)} / ${formatBytes(r.total)}`;
    const lines = rows.map((r) => {
      const right = `  ${amount(r).padStart(21)}`;
      return `${fit(r.label, width - right.length - 1)}${right}`;
    });
    const barWidth = Math.max(10, Math.min(40, width - 40));
    const filled = total === 0 ? barWidth : Math.round((done / total) * barWidth);
    lines.push(`total [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${amount({ done, total })}`);
    // Up to the first line drawn last time, then every line cleared and rewritten.
    let out = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const line of lines) out += `\r\x1b[2K${line}\n`;
    this.stream.write(out);
    this.drawn = lines.length;
  }
}

/** `text` cut (with an ellipsis in the middle) or padded to `width` columns. */
function fit(text: string, width: number): string {
  if (text.length <= width) return text.padEnd(width);
  const keep = Math.max(1, width - 1);
  const head = Math.ceil(keep / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}
