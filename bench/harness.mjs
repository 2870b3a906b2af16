// What the copy rows run: the contenders as processes (cnab-oci's CLI, skopeo), timed from spawn
// to exit, optionally under GNU time for peak RSS; fresh destination registries; request counts.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, countTransfers } from './registry.mjs';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const CLI = join(root, 'dist/bin/cnab-oci.js');
const SKOPEO = process.env.SKOPEO ?? '/usr/bin/skopeo';
const TIME = '/usr/bin/time';

/** Set by run.mjs: the work directory; whether the CLI has `copy` (else bench/lib-copy.mjs). */
export const ctx = { work: undefined, cliHasCopy: false };

export const log = (line) => process.stderr.write(`bench: ${line}\n`);

/** Run a command; resolves with its output and wall time, rejects on a non-zero exit. */
export function run(cmd, args, { rss = false } = {}) {
  return new Promise((resolve, reject) => {
    const timeFile = rss ? join(ctx.work, `time-${process.hrtime.bigint()}.txt`) : undefined;
    const [file, fileArgs] = rss ? [TIME, ['-v', '-o', timeFile, cmd, ...args]] : [cmd, args];
    const started = performance.now();
    const child = spawn(file, fileArgs, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', async (code) => {
      const ms = performance.now() - started;
      let maxRssKb;
      if (timeFile) {
        const text = await readFile(timeFile, 'utf8').catch(() => '');
        maxRssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(text)?.[1]);
      }
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ stdout, stderr, ms, maxRssKb });
    });
  });
}

export const skopeoVersion = async () => (await run(SKOPEO, ['--version'])).stdout.trim();

/** `cnab-oci copy SRC DST --json` (or the library stand-in while the CLI has no copy command). */
export function cnabCopy(src, dst, opts = {}) {
  const extra = opts.debug ? ['--debug'] : [];
  return ctx.cliHasCopy
    ? run(process.execPath, [CLI, 'copy', src, dst, '--json', ...extra], opts)
    : run(process.execPath, [join(root, 'bench/lib-copy.mjs'), src, dst, ...extra], opts);
}

export function cnabPush(bundleFile, target, opts = {}) {
  const extra = process.env.BENCH_PUSH_FLAGS ? process.env.BENCH_PUSH_FLAGS.split(' ') : [];
  return run(process.execPath, [CLI, 'push', bundleFile, '--target', target, '--json', ...extra], opts);
}

export const skopeoCopy = (src, dst, opts) =>
  run(SKOPEO, ['copy', '--all', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src}`, `docker://${dst}`], opts);

/** What a script with skopeo does to relocate a bundle: each image by digest, then the bundle's tag. */
export async function skopeoBundleScript(srcRepo, dstRepo, digests, tag) {
  const started = performance.now();
  for (const d of digests) await skopeoCopy(`${srcRepo}@${d}`, `${dstRepo}@${d}`);
  await skopeoCopy(`${srcRepo}:${tag}`, `${dstRepo}:${tag}`);
  return { ms: performance.now() - started };
}

/** The `stats` of a `--json` result. */
export const statsOf = (res) => {
  const text = res.stdout.trim();
  const doc = JSON.parse(text.startsWith('{') ? text : text.split('\n').at(-1));
  return doc.stats ?? {};
};

/** `fn` with a registry of its own, stopped (and its storage deleted) afterwards. */
export async function fresh(name, fn) {
  const reg = await startRegistry(ctx.work, name);
  try {
    return await fn(reg);
  } finally {
    await reg.stop();
  }
}

/** The requests `fn` causes on these registries, from their access logs. */
export async function counted(registries, fn) {
  const before = await Promise.all(registries.map((r) => r.requests().then((l) => l.length)));
  const result = await fn();
  const lines = (await Promise.all(registries.map((r) => r.requests()))).flatMap((l, i) => l.slice(before[i]));
  return { result, ...countTransfers(lines) };
}
