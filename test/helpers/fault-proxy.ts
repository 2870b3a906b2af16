import { createServer, request as httpRequest, Agent, type IncomingMessage, type Server, type ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A reverse proxy (node:http) between a client and a real registry that injects faults from a
 * seeded plan. Faults hit either the request (the registry never sees it, or sees part of it)
 * or the response (the registry did the work; the client hears something else). Every fault
 * actually injected is counted per `phase:kind`, so a test can prove faults happened.
 */
export type FaultKind = '503' | '429' | 'reset' | 'truncate' | 'flip' | 'slow';
export type FaultPhase = 'request' | 'response';

export interface ProxiedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export interface FaultRule {
  /** Which requests the rule applies to. */
  match: (req: ProxiedRequest) => boolean;
  kind: FaultKind;
  phase: FaultPhase;
  /** Apply to at most this many matching requests (default: all of them). */
  times?: number;
}

export interface FaultPlan {
  seed?: number;
  /** Probability that a request (that `eligible` accepts) gets a random fault. */
  rate?: number;
  kinds?: FaultKind[];
  phases?: FaultPhase[];
  /** Random faults as `phase:kind` pairs (e.g. `response:flip`); replaces kinds x phases when given. */
  faults?: Array<`${FaultPhase}:${FaultKind}`>;
  /** Retry-After sent with injected 429s (default: "0" or "1" at random). */
  retryAfter?: string;
  /** Requests random faults may hit (default: all). */
  eligible?: (req: ProxiedRequest) => boolean;
  /** Requests whose answers carry no digest to check them by (tag lists): a random flip there becomes a truncation. */
  unverifiable?: (req: ProxiedRequest) => boolean;
  /** Deterministic faults, checked before the random plan. */
  rules?: FaultRule[];
  /** Delay of a `slow` fault (default 300 ms). */
  slowMs?: number;
  /** Answer blob GETs with a 307 to this origin (`http://127.0.0.1:PORT`), as storage-backed registries do. */
  redirectBlobsTo?: string;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`: use it as the registry host. */
  host: string;
  /** Faults injected, by `phase:kind`. */
  counts: Record<string, number>;
  /** Every request seen, with the fault it got. */
  log: Array<{ method: string; url: string; status?: number; fault?: string; at: number; range?: string; contentRange?: string; authorization: boolean }>;
  total(): number;
  /** Replace the plan (counts are kept). */
  setPlan(plan: FaultPlan): void;
  stop(): Promise<void>;
}

/** mulberry32: small, fast, good enough to make a fault plan reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startFaultProxy(upstreamHost: string, initial: FaultPlan = {}): Promise<FaultProxy> {
  const [upHost, upPort] = [upstreamHost.slice(0, upstreamHost.lastIndexOf(':')), Number(upstreamHost.slice(upstreamHost.lastIndexOf(':') + 1))];
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let plan = initial;
  let random = prng(plan.seed ?? 1);
  const ruleUses = new Map<FaultRule, number>();
  const counts: Record<string, number> = {};
  const log: FaultProxy['log'] = [];
  const count = (phase: FaultPhase, kind: FaultKind) => {
    counts[`${phase}:${kind}`] = (counts[`${phase}:${kind}`] ?? 0) + 1;
  };

  const choose = (req: ProxiedRequest): { kind: FaultKind; phase: FaultPhase } | undefined => {
    for (const rule of plan.rules ?? []) {
      const used = ruleUses.get(rule) ?? 0;
      if ((rule.times === undefined || used < rule.times) && rule.match(req)) {
        ruleUses.set(rule, used + 1);
        return { kind: rule.kind, phase: rule.phase };
      }
    }
    if (!plan.rate || !(plan.eligible?.(req) ?? true)) return undefined;
    if (random() >= plan.rate) return undefined;
    if (plan.faults?.length) {
      const [phase, kind] = plan.faults[Math.floor(random() * plan.faults.length)]!.split(':') as [FaultPhase, FaultKind];
      return { kind, phase };
    }
    const kinds = plan.kinds ?? ['503', '429', 'reset', 'truncate', 'flip', 'slow'];
    const phases = plan.phases ?? ['request', 'response'];
    return { kind: kinds[Math.floor(random() * kinds.length)]!, phase: phases[Math.floor(random() * phases.length)]! };
  };

  const errorBody = (status: number) => Buffer.from(JSON.stringify({ errors: [{ code: status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: 'injected fault' }] }));
  const refuse = (res: ServerResponse, kind: '503' | '429') => {
    const status = Number(kind);
    const body = errorBody(status);
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': body.length };
    if (status === 429) headers['retry-after'] = plan.retryAfter ?? (random() < 0.5 ? '0' : '1');
    res.writeHead(status, headers).end(body);
  };

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch(() => res.socket?.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const info: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
    const entry: FaultProxy['log'][number] = {
      method: info.method,
      url: info.url,
      at: Date.now(),
      range: first(req.headers.range),
      contentRange: first(req.headers['content-range']),
      authorization: req.headers.authorization !== undefined,
    };
    log.push(entry);

    if (plan.redirectBlobsTo && info.method === 'GET' && /\/blobs\/sha(256|512):/.test(info.url)) {
      req.resume();
      entry.status = 307;
      res.writeHead(307, { location: `${plan.redirectBlobsTo}${info.url}`, 'content-length': 0 }).end();
      return;
    }

    const chosen = choose(info);
    const fault = chosen?.kind === 'flip' && plan.unverifiable?.(info) ? { ...chosen, kind: 'truncate' as const } : chosen;
    const body = await readBody(req).catch(() => undefined);
    if (body === undefined) return; // the client went away

    if (fault?.phase === 'request') {
      const { kind } = fault;
      if (kind === '503' || kind === '429') {
        count('request', kind);
        entry.fault = `request:${kind}`;
        entry.status = Number(kind);
        refuse(res, kind);
        return;
      }
      if (kind === 'reset') {
        count('request', kind);
        entry.fault = 'request:reset';
        res.socket?.destroy();
        return;
      }
      if (kind === 'truncate' && body.length > 1) {
        // The registry sees part of the body, then the connection dies.
        count('request', kind);
        entry.fault = 'request:truncate';
        const up = forward(info, undefined);
        up.on('error', () => {});
        up.on('response', (r) => r.resume());
        up.write(body.subarray(0, Math.max(1, Math.floor(body.length / 2))), () => {
          setTimeout(() => {
            up.destroy();
            res.socket?.destroy();
          }, 20);
        });
        return;
      }
      if (kind === 'flip' && body.length > 0) {
        count('request', kind);
        entry.fault = 'request:flip';
        flipByte(body, random);
      }
      if (kind === 'slow') {
        count('request', kind);
        entry.fault = 'request:slow';
        await sleep(plan.slowMs ?? 300);
      }
    }

    const upstream = await new Promise<IncomingMessage | undefined>((resolve) => {
      const up = forward(info, body);
      up.on('response', resolve);
      up.on('error', () => resolve(undefined));
      up.end(body);
    });
    if (!upstream) {
      res.socket?.destroy();
      return;
    }
    entry.status = upstream.statusCode;
    const headers = { ...upstream.headers };
    if (fault?.phase !== 'response') {
      res.writeHead(upstream.statusCode ?? 502, headers);
      upstream.pipe(res);
      return;
    }
    const data = await readBody(upstream).catch(() => Buffer.alloc(0));
    const { kind } = fault;
    const hasBody = data.length > 0 && info.method !== 'HEAD';
    if (kind === '503' || kind === '429') {
      count('response', kind);
      entry.fault = `response:${kind}`;
      entry.status = Number(kind);
      refuse(res, kind);
      return;
    }
    if (kind === 'reset') {
      count('response', kind);
      entry.fault = 'response:reset';
      if (!hasBody) {
        res.socket?.destroy();
        return;
      }
      res.writeHead(upstream.statusCode ?? 502, headers);
      res.write(data.subarray(0, Math.floor(random() * data.length)), () => res.socket?.destroy());
      return;
    }
    if (kind === 'truncate' && hasBody) {
      // A clean end after part of the body, without a Content-Length to contradict it.
      count('response', kind);
      entry.fault = 'response:truncate';
      delete headers['content-length'];
      res.writeHead(upstream.statusCode ?? 502, headers);
      res.end(data.subarray(0, Math.floor(data.length / 2)));
      return;
    }
    if (kind === 'flip' && hasBody) {
      count('response', kind);
      entry.fault = 'response:flip';
      flipByte(data, random);
    }
    if (kind === 'slow') {
      count('response', kind);
      entry.fault = 'response:slow';
      await sleep(plan.slowMs ?? 300);
    }
    res.writeHead(upstream.statusCode ?? 502, headers);
    res.end(data);
  }

  function forward(info: ProxiedRequest, body: Buffer | undefined) {
    const headers = { ...info.headers };
    if (body !== undefined) {
      delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
    }
    return httpRequest({ host: upHost, port: upPort, method: info.method, path: info.url, headers, agent });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    counts,
    log,
    total: () => Object.values(counts).reduce((a, b) => a + b, 0),
    setPlan(next: FaultPlan) {
      plan = next;
      random = prng(next.seed ?? 1);
      ruleUses.clear();
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
    stream.on('aborted', () => reject(new Error('aborted')));
  });
}

function flipByte(data: Buffer, random: () => number): void {
  const at = Math.floor(random() * data.length);
  data[at] = data[at]! ^ 0x20;
}

/**
 * A separate origin standing in for a registry's blob storage: it serves blobs by fetching them
 * from the registry with its own credentials, and records whether a client sent it an
 * Authorization header (it must not: credentials are for the registry only).
 */
export interface BlobOrigin {
  origin: string;
  requests: Array<{ url: string; authorization?: string }>;
  stop(): Promise<void>;
}

export async function startBlobOrigin(registryHost: string, registryAuthorization?: string): Promise<BlobOrigin> {
  const requests: BlobOrigin['requests'] = [];
  const [host, port] = [registryHost.slice(0, registryHost.lastIndexOf(':')), Number(registryHost.slice(registryHost.lastIndexOf(':') + 1))];
  const server = createServer((req, res) => {
    requests.push({ url: req.url ?? '/', authorization: req.headers.authorization });
    const headers: OutgoingHttpHeaders = {};
    if (registryAuthorization) headers.authorization = registryAuthorization;
    if (req.headers.range) headers.range = req.headers.range;
    const up = httpRequest({ host, port, method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    up.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: own } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${own}`,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
