import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transport } from '../../../src/registry/transport.js';

/**
 * The retry policy, against a scripted HTTP server: which answers are retried, how long the
 * client waits, and the bounds (attempts and the time budget).
 */
describe('transport retry policy', () => {
  let server: Server;
  let base: string;
  /** Answers to give, in order, per path; the last one repeats. */
  const script = new Map<string, Array<{ status: number; headers?: Record<string, string> }>>();
  const hits = new Map<string, number[]>();
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      const times = hits.get(path) ?? [];
      times.push(Date.now());
      hits.set(path, times);
      const answers = script.get(path) ?? [{ status: 200 }];
      const answer = answers[Math.min(times.length - 1, answers.length - 1)]!;
      res.writeHead(answer.status, { 'content-length': 0, ...answer.headers }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const send = async (transport: Transport, path: string, method: 'GET' | 'PUT' = 'GET') => {
    const res = await transport.send(`${base}${path}`, { method, ...(method === 'PUT' ? { body: new Uint8Array(3) } : {}) });
    await res.body.dump();
    return { status: res.statusCode, hits: hits.get(path) ?? [] };
  };

  it('retries 408, 429, 500, 502, 503 and 504, and succeeds when the registry recovers', async () => {
    const transport = new Transport({ retryDelay: 1, attempts: 4 });
    for (const status of [408, 429, 500, 502, 503, 504]) {
      const path = `/retry-${status}`;
      script.set(path, [{ status }, { status }, { status: 200 }]);
      expect(await send(transport, path, 'PUT')).toMatchObject({ status: 200 });
      expect(hits.get(path)).toHaveLength(3);
    }
  });

  it('never retries other 4xx answers, nor 501', async () => {
    const transport = new Transport({ retryDelay: 1, attempts: 4 });
    for (const status of [400, 401, 403, 404, 405, 409, 413, 416, 501]) {
      const path = `/final-${status}`;
      script.set(path, [{ status }, { status: 200 }]);
      expect((await send(transport, path)).status).toBe(status);
      expect(hits.get(path)).toHaveLength(1);
    }
  });

  it('stops after `attempts` tries and returns the last answer (attempts 1: no retry)', async () => {
    script.set('/down', [{ status: 503 }]);
    expect((await send(new Transport({ retryDelay: 1, attempts: 3 }), '/down')).hits).toHaveLength(3);
    script.set('/down-once', [{ status: 503 }, { status: 200 }]);
    expect(await send(new Transport({ retryDelay: 1, attempts: 1 }), '/down-once')).toMatchObject({ status: 503 });
    expect(hits.get('/down-once')).toHaveLength(1);
  });

  it('waits what Retry-After says (seconds or an HTTP date), else backs off exponentially with jitter', async () => {
    script.set('/after-seconds', [{ status: 429, headers: { 'retry-after': '1' } }, { status: 200 }]);
    const a = await send(new Transport({ retryDelay: 1 }), '/after-seconds');
    expect(a.hits[1]! - a.hits[0]!).toBeGreaterThanOrEqual(950);

    script.set('/after-date', [{ status: 503, headers: { 'retry-after': new Date(Date.now() + 2000).toUTCString() } }, { status: 200 }]);
    const d = await send(new Transport({ retryDelay: 1 }), '/after-date');
    // HTTP dates have whole seconds: somewhere between 1 and 2 s from now.
    expect(d.hits[1]! - d.hits[0]!).toBeGreaterThanOrEqual(900);

    script.set('/backoff', [{ status: 503 }, { status: 503 }, { status: 503 }, { status: 200 }]);
    const b = await send(new Transport({ retryDelay: 50, attempts: 4 }), '/backoff');
    const gaps = b.hits.slice(1).map((t, i) => t - b.hits[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(45); // 50 ms (+ up to 50% jitter)
    expect(gaps[1]).toBeGreaterThanOrEqual(95); // 100 ms
    expect(gaps[2]).toBeGreaterThanOrEqual(195); // 200 ms
    const t = new Transport({ retryDelay: 100 });
    const samples = Array.from({ length: 50 }, () => t.backoff(3));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(400);
    expect(Math.max(...samples)).toBeLessThanOrEqual(600);
    expect(new Set(samples).size).toBeGreaterThan(5); // jitter
    expect(new Transport({ retryDelay: 200 }).backoff(30)).toBeLessThanOrEqual(15_000); // capped
    // An operation's budget waits as its client does (a copy's new start of a blob uses it).
    const waits = Array.from({ length: 50 }, () => t.budget().backoff(3));
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(400);
    expect(Math.max(...waits)).toBeLessThanOrEqual(600);
  });

  it('begins no wait that would end past the time budget: the answer comes back at once', async () => {
    script.set('/later', [{ status: 503, headers: { 'retry-after': '30' } }, { status: 200 }]);
    const started = Date.now();
    expect((await send(new Transport({ maxRetryTime: 1000 }), '/later')).status).toBe(503);
    expect(Date.now() - started).toBeLessThan(900);
    expect(hits.get('/later')).toHaveLength(1);
  });

  it('retries connection failures of replayable requests, within the same bounds', async () => {
    // Nothing listens on this port: every try fails to connect.
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const lines: string[] = [];
    const transport = new Transport({ retryDelay: 1, attempts: 3, debug: (l) => lines.push(l) });
    await expect(transport.send(`http://127.0.0.1:${port}/v2/`, { method: 'GET' })).rejects.toThrow(/ECONNREFUSED/);
    expect(lines.filter((l) => / retry \d\/2 /.test(l))).toHaveLength(2);
  });
});
