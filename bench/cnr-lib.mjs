// Helpers of the CNR benchmark (bench/cnr.mjs): package tarballs, processes (`cnr serve`, the
// bare node:http ceiling), seeding through the HTTP API, and wrk runs with their numbers.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { Agent, request } from 'undici';
import { freePort } from './registry.mjs';
export { parallel } from './data.mjs';

export const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(root, 'dist/bin/cnab-oci.js');
const WRK = process.env.WRK ?? '/usr/bin/wrk';
const TIME = '/usr/bin/time';
const LUA = join(root, 'bench/cnr-wrk.lua');

export const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
export const log = (line) => process.stderr.write(`bench cnr: ${line}\n`);

/** A gzipped tar of one file `name/manifest.jsonnet` holding `content` (as test/helpers/cnr-packages.ts). */
export async function makeTarball(name, content) {
  const pack = tar.pack();
  const parts = [];
  pack.on('data', (d) => parts.push(d));
  const done = new Promise((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const body = Buffer.from(content);
  await new Promise((resolve, reject) =>
    pack.entry({ name: `${name}/manifest.jsonnet`, type: 'file', mode: 0o644, mtime: new Date(0), size: body.length }, body, (err) => (err ? reject(err) : resolve())));
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(parts));
}

/** A package whose gzip bytes are about `bytes` long: incompressible content, so the size is what goes over the wire. */
export const randomPackage = (name, bytes) => makeTarball(name, randomBytes(Math.max(16, bytes - 180)));

export const pushBody = (blob, release, mediaType = 'kpm') => JSON.stringify({ blob: blob.toString('base64'), release, media_type: mediaType });

/** One HTTP request through the shared pool: status, headers and body bytes. */
export async function http(url, { method = 'GET', body, headers } = {}) {
  const res = await request(url, { method, body, headers, dispatcher: agent });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

export async function push(base, pkg, blob, release) {
  const res = await http(`${base}/api/v1/packages/${pkg}`, { method: 'POST', body: pushBody(blob, release), headers: { 'content-type': 'application/json' } });
  if (res.status !== 200) throw new Error(`push ${pkg} ${release}: HTTP ${res.status} ${res.body.toString().slice(0, 300)}`);
}


/** Every process started here and not stopped yet, for the cleanup. */
const children = new Set();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** A node process serving HTTP on a free port (`args` get `--listen 127.0.0.1:PORT` or the port appended by `listen`). */
async function startNode(what, args, readyPath, extraNodeArgs = []) {
  const port = await freePort();
  const child = spawn(process.execPath, [...extraNodeArgs, ...args(port)], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const proc = {
    url,
    pid: child.pid,
    stderr: () => stderr,
    async stop() {
      children.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${what} did not answer within 30 s: ${stderr}`);
    }
    try {
      const res = await http(`${url}${readyPath}`);
      if (res.status === 200) return proc;
    } catch { /* not listening yet */ }
    await sleep(50);
  }
}

/** `cnab-oci cnr serve` on a free loopback port, no access log. */
export function startCnr(storage, { nodeArgs = [] } = {}) {
  return startNode(`cnr serve --storage ${storage}`, (port) => [CLI, 'cnr', 'serve', '--listen', `127.0.0.1:${port}`, '--storage', storage, '--log-format', 'none'], '/version', nodeArgs);
}

/** The bare node:http server answering canned responses (bench/cnr-ceiling.mjs), from a JSON file. */
export function startCeiling(answersFile) {
  return startNode('ceiling server', (port) => [join(root, 'bench/cnr-ceiling.mjs'), String(port), answersFile], '/ready');
}

/** An answer as the ceiling replays it: status, the headers node:http would not add itself, body. */
export function cannedAnswer(res) {
  const skip = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);
  const headers = Object.fromEntries(Object.entries(res.headers).filter(([k]) => !skip.has(k)));
  return { status: res.status, headers, body: res.body.toString('base64') };
}

/** Peak and current resident set size of a process, in MB, from /proc (Linux). */
export async function memoryOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { hwmMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
}

/** CPU time (user + system) a process has used, in ms, from /proc/PID/stat (clock ticks of 10 ms). */
export async function cpuMs(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time of the whole machine since boot, in ms over all CPUs: busy, stolen by the hypervisor, and in all. */
export async function machineCpu() {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: (user + nice + system + irq + softirq) * 10, steal: steal * 10, total: (user + nice + system + idle + iowait + irq + softirq + steal) * 10 };
}

/**
 * One wrk run (under /usr/bin/time, for wrk's own CPU time); resolves with requests/s (of 2xx answers, or of 200s for pushes), latency
 * percentiles in ms, the error counts wrk's summary has (bench/cnr-wrk.lua prints them), wrk's CPU ms.
 */
export function wrk(url, { connections = 16, threads = 2, seconds, env = {} }) {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '10s', '-s', LUA, url];
  return new Promise((resolve, reject) => {
    const child = spawn(TIME, ['-f', 'WRKCPU %U %S', WRK, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      children.delete(child);
      const line = out.split('\n').find((l) => l.startsWith('CNRBENCH '));
      if (code !== 0 || !line) return reject(new Error(`wrk ${args.join(' ')} exited ${code}: ${err.slice(-1000)}${out.slice(-1000)}`));
      const r = JSON.parse(line.slice('CNRBENCH '.length));
      const seconds = r.duration_us / 1e6;
      const socket = r.connect + r.read + r.write + r.timeout;
      const good = r.push ? r.ok : r.requests - r.status_errors;
      const other = r.push ? r.other : r.status_errors ? `${r.status_errors} non-2xx` : '';
      const cpu = /WRKCPU ([\d.]+) ([\d.]+)/.exec(err);
      const wrkCpuMs = cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : 0;
      resolve({ rate: good / seconds, good, requests: r.requests, p50: r.p50_us / 1000, p99: r.p99_us / 1000, socket, other, bytes: r.bytes, wrkCpuMs });
    });
  });
}


/** Median, min and max of some numbers. */
export function spread(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s.at(-1), n: s.length };
}
