import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { isLoopbackHost, registryApiHost } from '../oci/reference.js';
import { AbortedError } from '../oci/errors.js';
import { Dispatchers, undiciRequest, type ConnectionOptions } from './dispatchers.js';
import { ConnectionError } from './errors.js';
import { redirectHeaders } from './origins.js';
import { DEFAULT_RETRY_DELAY_MS, exponentialBackoff, RetryBudget } from '../util/retry-budget.js';

export type Scheme = 'https' | 'http';

export interface TransportOptions extends ConnectionOptions {
  /** Hosts (`host[:port]`) allowed plain HTTP and unverified HTTPS, as Docker's --insecure-registry. */
  insecureRegistries?: string[];
  /**
   * Total tries of one operation (first try included; `--retries N` is N + 1); default 4. A
   * request sent on its own (no `budget`) may be sent this many times; the requests of one
   * Repository operation share one budget of `attempts - 1` retries (see retry.ts).
   */
  attempts?: number;
  /** First backoff in ms (default 200); each retry doubles it, plus up to 50% random jitter, capped at 10 s. */
  retryDelay?: number;
  /**
   * Time budget for one request's retries, in ms (default 60 s): no retry starts, and no
   * backoff or Retry-After wait is begun, that would end later than this after the first try.
   */
  maxRetryTime?: number;
  /** Called with one line per request; never given a credential. */
  debug?: (line: string) => void;
  userAgent?: string;
  /** Cancels every request of this client: those in flight are aborted, no retry is begun (AbortedError). */
  signal?: AbortSignal;
}

export interface SendOptions {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  body?: Uint8Array | Readable;
  /** False for bodies that cannot be sent twice (streams): no retries, no redirects. */
  replayable?: boolean;
  /** Follow redirects (blob downloads are redirected to storage by many registries). */
  followRedirects?: boolean;
  /** The retries this request may take: its operation's (see retry.ts); default, a budget of its own. */
  budget?: RetryBudget;
  /** Set by send from the client's and the budget's signals. */
  signal?: AbortSignal;
}

/** One signal for the client's and the operation's cancellations (either may be absent). */
function cancellation(...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  return present.length <= 1 ? present[0] : AbortSignal.any(present);
}

/** A retry's wait, cut short (as an AbortedError) when the operation is cancelled. */
async function wait_(ms: number, signal: AbortSignal | undefined, url: string): Promise<void> {
  try {
    await sleep(ms, undefined, signal ? { signal } : undefined);
  } catch (err) {
    if (signal?.aborted) throw new AbortedError(`${describe(url)}: cancelled`, { cause: err });
    throw err;
  }
}

export type Response = Dispatcher.ResponseData;

/** Statuses that say "try again later" rather than "no". */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * HTTP for registries, as Docker does it: HTTPS first and verified; for insecure registries and
 * loopback, HTTPS without verification and then plain HTTP when HTTPS cannot connect. Retries
 * replayable requests on connection failures and on 408/429/5xx, honouring Retry-After, while
 * the request's retry budget (its operation's) lasts.
 * Redirects are followed by hand so an Authorization header never travels to another origin.
 */
export class Transport {
  private readonly schemes = new Map<string, Promise<Scheme>>();
  private readonly dispatchers: Dispatchers;
  private readonly insecure: Set<string>;
  readonly attempts: number;
  readonly maxRetryTime: number;
  readonly retryDelay: number;

  constructor(private readonly options: TransportOptions = {}) {
    this.insecure = new Set(options.insecureRegistries ?? []);
    this.dispatchers = new Dispatchers(options, (host) => this.isInsecure(host));
    this.attempts = Math.max(1, options.attempts ?? 4);
    this.maxRetryTime = Math.max(0, options.maxRetryTime ?? 60_000);
    this.retryDelay = Math.max(0, options.retryDelay ?? DEFAULT_RETRY_DELAY_MS);
    this.backoff = exponentialBackoff(this.retryDelay);
  }

  /** A budget for one operation: `attempts - 1` retries, shared by all its requests. */
  budget(): RetryBudget {
    return new RetryBudget(this.attempts - 1, this.options.signal, this.backoff);
  }

  /** The wait before retry number `attempt` (1-based): exponential, with jitter, capped. */
  readonly backoff: (attempt: number) => number;

  /** Docker treats loopback registries as insecure by default. */
  isInsecure(host: string): boolean {
    return this.insecure.has(host) || isLoopbackHost(host);
  }

  /** `https://host` or `http://host`, decided once per registry by pinging `/v2/`. */
  async origin(registry: string): Promise<string> {
    const host = registryApiHost(registry);
    let scheme = this.schemes.get(host);
    if (!scheme) {
      scheme = this.pickScheme(host);
      this.schemes.set(host, scheme);
      scheme.catch(() => this.schemes.delete(host));
    }
    return `${await scheme}://${host}`;
  }

  private async pickScheme(host: string): Promise<Scheme> {
    let httpsError: Error;
    try {
      await this.sendOnce(`https://${host}/v2/`, { method: 'GET', signal: this.options.signal });
      return 'https';
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      httpsError = err as Error;
    }
    const reason = (err: Error) => err.message.replace(/^GET [^:]+(:\d+)?: /, '');
    if (!this.isInsecure(host)) {
      const hint = /certificate|self[- ]signed|issuer/i.test(httpsError.message)
        ? `; trust its CA (--ca-file or /etc/docker/certs.d/${host}/ca.crt) or mark it --insecure-registry ${host}`
        : '';
      throw new ConnectionError(`cannot reach registry ${host} over HTTPS: ${reason(httpsError)}${hint}`, { cause: httpsError });
    }
    this.log(`${host}: HTTPS failed (${reason(httpsError)}); trying plain HTTP (insecure registry)`);
    try {
      // Plain HTTP is the last option: retry its connection failures like any request.
      await (await this.withRetries(`http://${host}/v2/`, { method: 'GET', signal: this.options.signal }, true, this.budget())).body.dump();
      return 'http';
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      throw new ConnectionError(`cannot reach registry ${host} over HTTPS (${reason(httpsError)}) or HTTP (${reason(err as Error)})`, { cause: err });
    }
  }

  private async sendOnce(url: string, opts: SendOptions): Promise<Response> {
    const res = await this.attempt(url, opts);
    await res.body.dump();
    return res;
  }

  /** Send with retries and redirects. The caller consumes or dumps the body. */
  async send(url: string, opts: SendOptions): Promise<Response> {
    const replayable = opts.replayable ?? !(opts.body && !(opts.body instanceof Uint8Array));
    const budget = opts.budget ?? this.budget();
    const signal = cancellation(this.options.signal, budget.signal);
    let current = url;
    let headers = { ...opts.headers };
    for (let redirects = 0; ; redirects++) {
      const res = await this.withRetries(current, { ...opts, headers, signal }, replayable, budget);
      if (!opts.followRedirects || ![301, 302, 303, 307, 308].includes(res.statusCode) || redirects >= 5) return res;
      const location = header(res, 'location');
      if (!location) return res;
      await res.body.dump();
      const next = new URL(location, current);
      // Credentials are for the registry only: storage back-ends get presigned URLs.
      headers = redirectHeaders(headers, new URL(current), next);
      this.log(`redirect to ${next.origin}${next.pathname}`);
      current = next.toString();
    }
  }

  /**
   * One request, sent again while `budget` lasts (never when it cannot be replayed). A wait that
   * would end past maxRetryTime after this request's first try is not begun, and takes nothing.
   */
  private async withRetries(url: string, opts: SendOptions, replayable: boolean, budget: RetryBudget): Promise<Response> {
    const deadline = Date.now() + this.maxRetryTime;
    for (;;) {
      let res: Response;
      try {
        res = await this.attempt(url, opts);
      } catch (err) {
        const retry = replayable ? budget.next() : undefined;
        if (retry === undefined) throw err;
        const wait = this.backoff(retry);
        if (Date.now() + wait > deadline) throw err;
        budget.take();
        this.log(`${opts.method} ${describe(url)}: ${(err as Error).message}; retry ${retry}/${budget.limit} in ${wait} ms`);
        await wait_(wait, opts.signal, url);
        continue;
      }
      const retry = replayable && RETRY_STATUSES.has(res.statusCode) ? budget.next() : undefined;
      if (retry === undefined) return res;
      const wait = retryAfter(header(res, 'retry-after')) ?? this.backoff(retry);
      if (Date.now() + wait > deadline) return res;
      budget.take();
      await res.body.dump();
      this.log(`${opts.method} ${describe(url)}: HTTP ${res.statusCode}; retry ${retry}/${budget.limit} in ${wait} ms`);
      await wait_(wait, opts.signal, url);
    }
  }

  private async attempt(url: string, opts: SendOptions): Promise<Response> {
    const u = new URL(url);
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'cnab-oci', ...opts.headers };
    try {
      const res = await untilAborted(undiciRequest.call(this.dispatchers.for(u), {
        origin: u.origin,
        path: `${u.pathname}${u.search}`,
        method: opts.method,
        headers,
        body: opts.body,
        // undici closes the connection after every HEAD by default (for servers that send a
        // body anyway); registries do not, and a new connection (a TLS handshake) per HEAD is
        // the most expensive part of checking what a destination has. Go keeps it open too.
        reset: false,
        signal: opts.signal,
      }), opts.signal);
      this.log(`${opts.method} ${describe(url)} -> ${res.statusCode}`);
      return res;
    } catch (err) {
      // Cancelled, not broken: never retried.
      if (opts.signal?.aborted) throw new AbortedError(`${opts.method} ${describe(url)}: cancelled`, { cause: err });
      throw new ConnectionError(`${opts.method} ${u.host}: ${networkMessage(err)}`, { cause: err });
    }
  }

  log(line: string): void {
    this.options.debug?.(line);
  }

  close(): Promise<void> {
    return this.dispatchers.close();
  }
}

/**
 * The request, or its cancellation as soon as `signal` fires: undici honours an abort only once
 * the connection is made, so a TLS handshake that never ends (a hung server) held Ctrl-C for
 * the 10 s connect timeout. A request given up on is let go: its answer, if any, is dumped.
 */
function untilAborted(request: Promise<Response>, signal: AbortSignal | undefined): Promise<Response> {
  if (!signal) return request;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    request.then(
      (res) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) res.body.dump().catch(() => {});
        resolve(res);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** URL without its query: upload locations carry opaque state that only clutters logs. */
function describe(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

function retryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

function networkMessage(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code;
  let msg = (e.cause?.message ?? e.message ?? String(err)).split('\n')[0]!.trim();
  // OpenSSL's "8044...:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:file:line:" -> the reason.
  msg = /:error:[0-9A-F]+:[^:]+:[^:]*:([^:]+)/.exec(msg)?.[1] ?? msg;
  return code && !msg.includes(code) ? `${msg} (${code})` : msg;
}
