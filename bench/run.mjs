// `npm run bench [-- --quick] [-- --only startup,big,medium,small,reloc,recopy,huge,cnr] [-- --reps N]`
//
// cnab-oci (the CLI: `copy`, `push`) against skopeo 1.9 and against ceilings with no client
// logic, on loopback registry:2 servers started here (Debian's `docker-registry`), with
// incompressible images. Every figure of a row is measured in the same run. Timed rows run each
// contender --reps times (default 3; --quick 1), in turn (cnab-oci, skopeo, ceiling, cnab-oci,
// ...), each to a fresh destination registry, and print the median with min-max, e.g.
// `3.14 s (3.02-3.40)`. Ratios are given from the medians and as paired ratios (each rep's own
// ratio: median, min-max); the verdicts ("met") use the median of the paired ratios. Requests,
// uploads and mounts come from the registries' access logs, peak RSS from `/usr/bin/time -v`.
// See README "Performance".
//
// Rows (section name for --only in brackets):
// - [big] 4 images x 4 layers of 25 MB (400 MB; quick 32 MB) in a bundle, registry -> registry:
//   `cnab-oci copy` against the skopeo script (each image by digest, then the bundle's tag, with
//   copy --all) and the raw relay (bench/relay.mjs: every blob's GET on the source piped into a
//   monolithic PUT on the destination, all at once). Targets: <= skopeo's time; >= 90% of the
//   relay's speed (relay time / cnab-oci time). Raw ingest (the blobs PUT from memory, all at
//   once) is a secondary figure.
// - [medium] the same shape at 100 MB (quick 8 MB), against the same skopeo script and the
//   relay. Target: <= 1.0x skopeo.
// - [recopy] in each big rep, each contender copies again onto what it just copied: requests
//   (both registries) and time. No target set.
// - [reloc] the big bundle copied to another repository of the same registry, once each: blobs
//   uploaded and mounted. Target: 0 uploads.
// - [small] a bundle of 20 images (2 small layers each) from 20 repositories: `cnab-oci push`
//   against one `skopeo copy` per image; time, requests per image (both registries) beside the
//   protocol's minimum (bench/image-rows.mjs). Target: <= 50% of skopeo's time.
// - [huge] one 1 GiB layer (quick 64 MiB): `cnab-oci copy` against `skopeo copy --all`; MB/s,
//   speed against skopeo's, peak RSS (max over reps). Targets: >= skopeo's speed; <= 150 MB.
//
// The `startup` section is bench/startup.mjs (the CLI's --version and --help beside `node -e 0`),
// run as its own process before the others; the `cnr` section is bench/cnr.mjs (the CNR server
// under wrk load), run as its own process after them. Each prints its own table.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, stopAllRegistries } from './registry.mjs';
import { agent } from './data.mjs';
import { CLI, ctx, log, root, run, skopeoVersion } from './harness.mjs';
import { closeRelay } from './relay.mjs';
import { bigRow, copyRuns, makeBundle, mediumRow, recopyRow, relocRow } from './copy-rows.mjs';
import { hugeRow, smallRow } from './image-rows.mjs';
import { yn } from './stats.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const COPY_SECTIONS = ['big', 'medium', 'small', 'reloc', 'recopy', 'huge'];
const only = new Set((argvValue('--only') ?? ['startup', ...COPY_SECTIONS, 'cnr'].join(',')).split(','));
const reps = Number(argvValue('--reps') ?? (quick ? 1 : 3));
const SIZES = quick
  ? { bigLayer: 2_000_000, mediumLayer: 500_000, smallImages: 20, smallLayers: [16_000, 48_000], huge: 64 * 2 ** 20 }
  : { bigLayer: 25_000_000, mediumLayer: 6_250_000, smallImages: 20, smallLayers: [16_000, 48_000], huge: 2 ** 30 };

function argvValue(name) {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return argv[i].includes('=') ? argv[i].slice(name.length + 1) : argv[i + 1];
}

const cleanup = async () => {
  await stopAllRegistries();
  await agent.close().catch(() => {});
  await closeRelay();
  if (ctx.work) await rm(ctx.work, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => cleanup().finally(() => process.exit(130)));
process.once('exit', () => {
  if (ctx.work) rmSync(ctx.work, { recursive: true, force: true });
});

async function main() {
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps ${reps}: a whole number of at least 1`);
  ctx.work = await mkdtemp(join(tmpdir(), 'cnab-oci-bench-'));
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm run bench does)');
  if (only.has('startup')) await section('bench/startup.mjs');
  if (!COPY_SECTIONS.some((s) => only.has(s))) return only.has('cnr') ? section('bench/cnr.mjs') : undefined;
  ctx.cliHasCopy = /^\s+copy\b/m.test((await run(process.execPath, [CLI, '--help'])).stdout);
  log(`${quick ? 'quick' : 'full'} run, ${reps} rep(s)${reps < 3 && !quick ? ' (the rows want at least 3)' : ''}; cnab-oci copy via ${ctx.cliHasCopy ? 'the CLI' : 'the library (CLI has no copy yet)'}; ${await skopeoVersion()}`);
  const rows = {};
  const A = await startRegistry(ctx.work, 'src');

  if (only.has('big') || only.has('reloc') || only.has('recopy')) {
    const big = await makeBundle(A, 'big', SIZES.bigLayer);
    if (only.has('big') || only.has('recopy')) {
      const runs = await copyRuns(A, big, { reps, recopy: only.has('recopy'), withRelay: only.has('big'), withIngest: only.has('big') });
      if (only.has('big')) rows.big = bigRow(big, runs);
      if (only.has('recopy')) rows.recopy = recopyRow(runs);
    }
    if (only.has('reloc')) rows.reloc = await relocRow(A, big);
  }
  if (only.has('medium')) {
    const medium = await makeBundle(A, 'medium', SIZES.mediumLayer);
    rows.medium = mediumRow(medium, await copyRuns(A, medium, { reps }));
  }
  if (only.has('small')) rows.small = await smallRow(A, { images: SIZES.smallImages, layers: SIZES.smallLayers, reps });
  if (only.has('huge')) rows.huge = await hugeRow(A, { size: SIZES.huge, reps });

  printTable(['big', 'medium', 'recopy', 'reloc', 'small', 'huge'].map((k) => rows[k]).filter(Boolean));
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
