// A loopback registry:2 for the benchmark: Debian's `docker-registry` binary (the distribution
// code of registry:2), as test/helpers/registry.ts starts it, plus an access log to count requests.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

const BINARY = process.env.CNAB_OCI_TEST_REGISTRY_BIN ?? '/usr/bin/docker-registry';

/** Every registry started and not yet stopped, so a failing run can still clean up. */
const running = new Set();
// Last resort when the bench dies without its cleanup (an uncaught error, a closed pipe).
process.once('exit', () => {
  for (const r of running) r.kill();
});

export async function startRegistry(parent, name) {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} not found: apt-get install -y docker-registry`);
  const dir = await mkdtemp(join(parent, `registry-${name}-`));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  await writeFile(config, [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: cnab-oci-bench',
    '',
  ].join('\n'));
  const logFile = join(dir, 'access.log');
  const log = createWriteStream(logFile);
  const child = spawn(BINARY, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const host = `127.0.0.1:${port}`;
  const reg = {
    /** Synchronous: for the exit hook. */
    kill() {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
    name,
    host,
    dir,
    pid: child.pid,
    /** Access-log lines (one per request) written so far. */
    async requests() {
      await sleep(150); // let the registry flush its log
      const text = await readFile(logFile, 'utf8');
      return text.split('\n').filter((l) => l.includes('"')).map(parseLine);
    },
    async stop() {
      running.delete(reg);
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => { clearTimeout(timer); resolve(); });
          child.kill('SIGTERM');
        });
      }
      log.end();
      await rm(dir, { recursive: true, force: true });
    },
  };
  running.add(reg);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) { await reg.stop(); throw new Error(`docker-registry exited: ${stderr}`); }
    try {
      const res = await request(`http://${host}/v2/`);
      await res.body.dump();
      if (res.statusCode === 200) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) { await reg.stop(); throw new Error(`docker-registry did not start: ${stderr}`); }
    await sleep(50);
  }
  return reg;
}

export async function stopAllRegistries() {
  await Promise.all([...running].map((r) => r.stop().catch(() => {})));
}

/** `127.0.0.1 - - [date] "METHOD /path HTTP/1.1" status bytes "ref" "ua"` */
function parseLine(line) {
  const m = /"(\w+) (\S+) HTTP\/[\d.]+" (\d+)/.exec(line);
  return m ? { method: m[1], path: m[2], status: Number(m[3]) } : { method: '?', path: line, status: 0 };
}

/** Blob uploads (a body sent: monolithic PUT with a body, or PATCH) and successful mounts in a slice of the log. */
export function countTransfers(lines) {
  let uploads = 0;
  let mounts = 0;
  let patches = 0;
  for (const l of lines) {
    if (l.method === 'POST' && l.path.includes('/blobs/uploads/') && l.path.includes('mount=') && l.status === 201) mounts++;
    if (l.method === 'PUT' && l.path.includes('/blobs/uploads/') && l.status === 201) uploads++;
    if (l.method === 'PATCH') patches++;
  }
  return { requests: lines.length, uploads, mounts, patches };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
