// `npm run bench [-- --quick] [-- --only startup,big,small,reloc,recopy,huge,cnr] [-- --reps N]`
//
// cnab-oci against skopeo (and against the registry's raw ingest rate) on loopback registry:2
// servers started here. Every figure of a row is measured in the same run. See README
// "Performance" for what each row means. The `startup` section is bench/startup.mjs (the CLI's
// --version and --help beside `node -e 0`), run as its own process before the others; the `cnr`
// section is bench/cnr.mjs (the CNR server under wrk load), run as its own process after them.
// Each prints its own table.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, stopAllRegistries, countTransfers } from './registry.mjs';
import { agent, bundleJson, makeImage, parallel, pushHugeImage, pushImage, putBlob } from './data.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const COPY_SECTIONS = ['big', 'small', 'reloc', 'recopy', 'huge'];
const only = new Set((argvValue('--only') ?? ['startup', ...COPY_SECTIONS, 'cnr'].join(',')).split(','));
const reps = Number(argvValue('--reps') ?? (quick ? 1 : 2));
const SIZES = quick
  ? { bigLayer: 2_000_000, smallImages: 20, smallLayers: [16_000, 48_000], huge: 64 * 2 ** 20 }
  : { bigLayer: 25_000_000, smallImages: 20, smallLayers: [16_000, 48_000], huge: 2 ** 30 };
const SKOPEO = process.env.SKOPEO ?? '/usr/bin/skopeo';
const TIME = '/usr/bin/time';

function argvValue(name) {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return argv[i].includes('=') ? argv[i].slice(name.length + 1) : argv[i + 1];
}

let work;
const cleanup = async () => {
  await stopAllRegistries();
  await agent.close().catch(() => {});
  if (work) await rm(work, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => cleanup().finally(() => process.exit(130)));
process.once('exit', () => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Run a command; resolves with its output and wall time, rejects on a non-zero exit. */
function run(cmd, args, { rss = false } = {}) {
  return new Promise((resolve, reject) => {
    const timeFile = rss ? join(work, `time-${process.hrtime.bigint()}.txt`) : undefined;
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

const CLI = join(root, 'dist/cli/main.js');
let cliHasCopy = false;

/** `cnab-oci copy SRC DST --json` (or the library stand-in while the CLI has no copy command). */
function cnabCopy(src, dst, opts = {}) {
  const extra = opts.debug ? ['--debug'] : [];
  return cliHasCopy
    ? run(process.execPath, [CLI, 'copy', src, dst, '--json', ...extra], opts)
    : run(process.execPath, [join(root, 'bench/lib-copy.mjs'), src, dst, ...extra], opts);
}

function cnabPush(bundleFile, target, opts = {}) {
  return run(process.execPath, [CLI, 'push', bundleFile, '--target', target, '--json', ...(process.env.BENCH_PUSH_FLAGS ? process.env.BENCH_PUSH_FLAGS.split(' ') : [])], opts);
}

const skopeoCopy = (src, dst, opts) =>
  run(SKOPEO, ['copy', '--all', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src}`, `docker://${dst}`], opts);

/** What a script with skopeo does to relocate a bundle: each image by digest, then the bundle's tag. */
async function skopeoBundleScript(srcRepo, dstRepo, digests, tag) {
  const started = performance.now();
  for (const d of digests) await skopeoCopy(`${srcRepo}@${d}`, `${dstRepo}@${d}`);
  await skopeoCopy(`${srcRepo}:${tag}`, `${dstRepo}:${tag}`);
  return { ms: performance.now() - started };
}

const statsOf = (res) => {
  const text = res.stdout.trim();
  const doc = JSON.parse(text.startsWith('{') ? text : text.split('\n').at(-1));
  return doc.stats ?? {};
};

const fmtS = (ms) => `${(ms / 1000).toFixed(2)} s`;
const fmtMBs = (bytes, ms) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
const fmtMB = (kb) => `${(kb / 1024).toFixed(0)} MB`;
const min = (xs) => Math.min(...xs);
const yn = (ok) => (ok ? 'yes' : 'no');
const log = (line) => process.stderr.write(`bench: ${line}\n`);

async function fresh(name, fn) {
  const reg = await startRegistry(work, name);
  try {
    return await fn(reg);
  } finally {
    await reg.stop();
  }
}

/** The requests `fn` causes on these registries, from their access logs. */
async function counted(registries, fn) {
  const before = await Promise.all(registries.map((r) => r.requests().then((l) => l.length)));
  const result = await fn();
  const lines = (await Promise.all(registries.map((r) => r.requests()))).flatMap((l, i) => l.slice(before[i]));
  return { result, ...countTransfers(lines) };
}

async function main() {
  work = await mkdtemp(join(tmpdir(), 'cnab-oci-bench-'));
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm run bench does)');
  if (only.has('startup')) await section('bench/startup.mjs');
  if (!COPY_SECTIONS.some((s) => only.has(s))) return only.has('cnr') ? section('bench/cnr.mjs') : undefined;
  cliHasCopy = /^\s+copy\b/m.test((await run(process.execPath, [CLI, '--help'])).stdout);
  const skopeoVersion = (await run(SKOPEO, ['--version'])).stdout.trim();
  log(`${quick ? 'quick' : 'full'} run, ${reps} rep(s); cnab-oci copy via ${cliHasCopy ? 'the CLI' : 'the library (CLI has no copy yet)'}; ${skopeoVersion}`);
  const rows = [];
  const A = await startRegistry(work, 'src');

  // ---- big layers ---------------------------------------------------------------------------
  let big;
  if (only.has('big') || only.has('reloc') || only.has('recopy')) {
    log('generating 4 images x 4 random layers');
    const images = Array.from({ length: 4 }, (_, i) => makeImage([SIZES.bigLayer, SIZES.bigLayer, SIZES.bigLayer, SIZES.bigLayer], `big-${i}`));
    for (const [i, im] of images.entries()) await pushImage(A.host, `src/big-${i}`, 'v1', im);
    const bundleFile = join(work, 'big-bundle.json');
    await writeFile(bundleFile, bundleJson('big', images.map((_, i) => `${A.host}/src/big-${i}:v1`)));
    await cnabPush(bundleFile, `${A.host}/bench/big:1`);
    const blobs = images.flatMap((im) => im.blobs);
    big = { images, blobs, bytes: blobs.reduce((n, b) => n + b.desc.size, 0), digests: images.map((im) => im.manifest.desc.digest) };
  }

  if (only.has('big') || only.has('recopy')) {
    const t = { cnab: [], skopeo: [], raw4: [], raw8: [] };
    let recopy;
    for (let rep = 0; rep < reps; rep++) {
      log(`big layers, rep ${rep + 1}: cnab-oci copy`);
      await fresh('dst', async (B) => {
        t.cnab.push((await cnabCopy(`${A.host}/bench/big:1`, `${B.host}/bench/big:1`)).ms);
        if (rep === 0) {
          const c = await counted([A, B], () => cnabCopy(`${A.host}/bench/big:1`, `${B.host}/bench/big:1`, { debug: true }));
          recopy = { cnab: { ms: c.result.ms, requests: c.requests, debugLines: c.result.stderr.split('\n').filter((l) => / -> \d{3}$/.test(l)).length } };
        }
      });
      log(`big layers, rep ${rep + 1}: skopeo script`);
      await fresh('dst', async (B) => {
        t.skopeo.push((await skopeoBundleScript(`${A.host}/bench/big`, `${B.host}/bench/big`, big.digests, '1')).ms);
        if (rep === 0) {
          const c = await counted([A, B], () => skopeoBundleScript(`${A.host}/bench/big`, `${B.host}/bench/big`, big.digests, '1'));
          recopy.skopeo = { ms: c.result.ms, requests: c.requests };
        }
      });
      for (const concurrency of [4, 8]) {
        log(`big layers, rep ${rep + 1}: raw ingest, ${concurrency} at once`);
        await fresh('dst', async (B) => {
          const started = performance.now();
          await parallel(big.blobs, concurrency, (b) => putBlob(B.host, 'raw/big', b.desc, b.data));
          t[`raw${concurrency}`].push(performance.now() - started);
        });
      }
    }
    if (only.has('big')) {
      const raw = Math.min(min(t.raw4), min(t.raw8));
      const cn = min(t.cnab);
      const sk = min(t.skopeo);
      rows.push({
        scenario: `big layers: 4 images, ${(big.bytes / 1e6).toFixed(0)} MB, registry -> registry`,
        cnab: `${fmtS(cn)} (${fmtMBs(big.bytes, cn)})`,
        skopeo: `${fmtS(sk)} (${fmtMBs(big.bytes, sk)})`,
        other: `raw ingest ${fmtS(raw)} (${fmtMBs(big.bytes, raw)}; c=4 ${fmtS(min(t.raw4))}, c=8 ${fmtS(min(t.raw8))}); cnab-oci = ${((raw / cn) * 100).toFixed(0)}% of raw`,
        target: '<= skopeo; >= 90% of raw ingest',
        met: `${yn(cn <= sk)}; ${yn(raw / cn >= 0.9)}`,
      });
    }
    if (only.has('recopy')) {
      rows.push({
        scenario: 're-copy of the big bundle, everything already there',
        cnab: `${recopy.cnab.requests} requests, ${fmtS(recopy.cnab.ms)}`,
        skopeo: `${recopy.skopeo.requests} requests, ${fmtS(recopy.skopeo.ms)}`,
        other: `cnab-oci --debug: ${recopy.cnab.debugLines} requests logged`,
        target: 'none set (fewer requests; time)',
        met: `${yn(recopy.cnab.requests < recopy.skopeo.requests)}; ${yn(recopy.cnab.ms < recopy.skopeo.ms)}`,
      });
    }
  }

  // ---- same-registry relocation --------------------------------------------------------------
  if (only.has('reloc')) {
    log('same-registry relocation');
    const cn = await counted([A], () => cnabCopy(`${A.host}/bench/big:1`, `${A.host}/reloc/cnab:1`));
    const stats = statsOf(cn.result);
    const sk = await counted([A], () => skopeoBundleScript(`${A.host}/bench/big`, `${A.host}/reloc/skopeo`, big.digests, '1'));
    rows.push({
      scenario: `same-registry relocation (${big.blobs.length} blobs): blobs uploaded`,
      cnab: `${cn.uploads} uploaded, ${cn.mounts} mounted, ${fmtS(cn.result.ms)}`,
      skopeo: `${sk.uploads} uploaded, ${sk.mounts} mounted, ${fmtS(sk.result.ms)}`,
      other: `cnab-oci --json stats: ${stats.mounts} mounts, ${stats.objectsCopied} objects copied`,
      target: '0 uploads (all mounts)',
      met: cn.uploads === 0,
    });
  }

  // ---- many small images ---------------------------------------------------------------------
  if (only.has('small')) {
    log(`many small images: ${SIZES.smallImages} images in ${SIZES.smallImages} repositories`);
    const refs = [];
    for (let i = 0; i < SIZES.smallImages; i++) {
      const repo = `small/img-${String(i).padStart(2, '0')}`;
      await pushImage(A.host, repo, 'v1', makeImage(SIZES.smallLayers, repo));
      refs.push({ repo, ref: `${A.host}/${repo}:v1` });
    }
    const bundleFile = join(work, 'small-bundle.json');
    await writeFile(bundleFile, bundleJson('small', refs.map((r) => r.ref)));
    const t = { cnab: [], skopeo: [] };
    for (let rep = 0; rep < reps; rep++) {
      await fresh('dst', async (B) => t.cnab.push((await cnabPush(bundleFile, `${B.host}/bench/small:1`)).ms));
      await fresh('dst', async (B) => {
        const started = performance.now();
        for (const r of refs) await skopeoCopy(r.ref, `${B.host}/bench/small:${r.repo.split('/')[1]}`);
        t.skopeo.push(performance.now() - started);
      });
    }
    const cn = min(t.cnab);
    const sk = min(t.skopeo);
    rows.push({
      scenario: `many small images: bundle of ${SIZES.smallImages} images from ${SIZES.smallImages} repositories, push (fixup)`,
      cnab: fmtS(cn),
      skopeo: `${fmtS(sk)} (${(sk / SIZES.smallImages).toFixed(0)} ms per image)`,
      other: `cnab-oci = ${((cn / sk) * 100).toFixed(0)}% of skopeo's time`,
      target: '<= 50% of skopeo',
      met: cn <= sk / 2,
    });
  }

  // ---- one huge layer: peak memory -----------------------------------------------------------
  if (only.has('huge')) {
    log(`one ${(SIZES.huge / 2 ** 20).toFixed(0)} MiB layer: generating`);
    await pushHugeImage(A.host, 'src/huge', 'v1', SIZES.huge);
    const bundleFile = join(work, 'huge-bundle.json');
    await writeFile(bundleFile, bundleJson('huge', [`${A.host}/src/huge:v1`]));
    await cnabPush(bundleFile, `${A.host}/bench/huge:1`);
    log('one huge layer: copies under /usr/bin/time -v');
    const cn = await fresh('dst', (B) => cnabCopy(`${A.host}/bench/huge:1`, `${B.host}/bench/huge:1`, { rss: true }));
    const sk = await fresh('dst', (B) => skopeoCopy(`${A.host}/bench/huge:1`, `${B.host}/bench/huge:1`, { rss: true }));
    rows.push({
      scenario: `peak RSS copying one ${SIZES.huge >= 2 ** 30 ? `${SIZES.huge / 2 ** 30} GiB` : `${SIZES.huge / 2 ** 20} MiB`} layer`,
      cnab: `${fmtMB(cn.maxRssKb)} (${fmtS(cn.ms)}, ${fmtMBs(SIZES.huge, cn.ms)})`,
      skopeo: `${fmtMB(sk.maxRssKb)} (${fmtS(sk.ms)}, ${fmtMBs(SIZES.huge, sk.ms)})`,
      other: '',
      target: '<= 150 MB',
      met: cn.maxRssKb / 1024 <= 150,
    });
  }

  printTable(rows);
  if (only.has('cnr')) await section('bench/cnr.mjs');
}

/** A section that is its own script in its own process (bench/cnr.mjs: its servers; its table), with this run's --quick. */
function section(script) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, script), ...(quick ? ['--quick'] : [])], { cwd: root, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${script} exited ${code}`))));
  });
}

function printTable(rows) {
  const head = ['scenario', 'cnab-oci', 'skopeo 1.9', 'also measured', 'target', 'met'];
  const body = rows.map((r) => [r.scenario, r.cnab, r.skopeo, r.other, r.target, typeof r.met === 'string' ? r.met : yn(r.met)]);
  const lines = [head, head.map(() => '---'), ...body].map((cells) => `| ${cells.join(' | ')} |`);
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench: failed: ${err.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
