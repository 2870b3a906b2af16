
export type LogFormat = 'text' | 'json';

export interface AccessEntry {
  time: Date;
  remote: string;
  method: string;
  path: string;
  status: number;
  durationMs: number;
  /** The authenticated user's name, when there is one (never a credential). */
  user?: string;
}

/** Query parameters whose values are never logged. */
const SECRET_PARAMS = /token|password|passwd|secret|auth|key|signature|credential/i;

/** A request path for the log: query values of anything credential-like replaced. */
export function loggablePath(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const key of [...params.keys()]) if (SECRET_PARAMS.test(key)) params.set(key, 'REDACTED');
  return `${url.slice(0, q)}?${params.toString()}`;
}

export function formatEntry(e: AccessEntry, format: LogFormat): string {
  const duration = Math.round(e.durationMs * 100) / 100;
  if (format === 'json') {
    return JSON.stringify({ time: e.time.toISOString(), remote: e.remote, method: e.method, path: e.path, status: e.status, duration_ms: duration, ...(e.user ? { user: e.user } : {}) });
  }
  return `${e.time.toISOString()} ${e.remote} ${e.user ?? '-'} "${e.method} ${e.path}" ${e.status} ${duration}ms`;
}

/**
 * One line per request on stderr (or another stream). Lines are gathered and written together
 * once per tick: a write per request would be a system call per request under load.
 */
export class AccessLog {
  private pending: string[] = [];
  private scheduled = false;

  constructor(private readonly format: LogFormat, private readonly out: NodeJS.WritableStream = process.stderr) {}

  write(entry: AccessEntry): void {
    this.pending.push(formatEntry(entry, this.format));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.out.write(text);
  }
}
