import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort } from './registry.js';
import { CLI } from './cli.js';


/** A real `cnab-oci cnr serve` process on a free loopback port (the test script builds dist/ first). */
export interface CnrServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything it wrote on stderr so far (the access log among it). */
  stderr(): string;
  /** SIGTERM and wait for the exit (SIGKILL after 5 s). */
  stop(): Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

export interface CnrServerOptions {
  /** `oci:DIR` or `REGISTRY/PREFIX`. */
  storage: string;
  /** More flags for `cnr serve` (before the command: global flags go in `globalArgs`). */
  args?: string[];
  globalArgs?: string[];
  env?: Record<string, string | undefined>;
  /** Listen on this host instead of 127.0.0.1. */
  host?: string;
}

export async function startCnrServer(options: CnrServerOptions): Promise<CnrServer> {
  const port = await freePort();
  const host = options.host ?? '127.0.0.1';
  const child = spawn(
    process.execPath,
    [CLI, ...(options.globalArgs ?? []), 'cnr', 'serve', '--listen', `${host}:${port}`, '--storage', options.storage, ...(options.args ?? [])],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...options.env } },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://${host}:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`cnr serve exited with ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`cnr serve did not answer within 20 s: ${stderr}`);
    }
    try {
      const res = await request(`${url}/version`);
      await res.body.dump();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    port,
    child,
    stderr: () => stderr,
    kill: (signal) => child.kill(signal),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

/** One HTTP request to a CNR server; never throws on a status. */
export async function call(url: string, init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', ...(init.body !== undefined ? { body: init.body } : {}), ...(init.headers ? { headers: init.headers } : {}) });
  const body = Buffer.from(await res.body.arrayBuffer());
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, body, json };
}
