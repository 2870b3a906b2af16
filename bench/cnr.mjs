// `node bench/cnr.mjs [--quick] [--runs N] [--seconds S] [--cpu-prof]` (or `npm run bench -- --only cnr`)
//
// `cnab-oci cnr serve` under wrk load (16 connections; 8 for pushes) against a bare node:http
// server answering the same bytes (the ceiling) and the reference cnr-server figures measured
// earlier on this machine. Every figure of ours and of the ceiling comes from this run: the
// loads are interleaved run by run, and each row shows the median with the min–max of the runs.
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, stopAllRegistries } from './registry.mjs';
import { agent, cannedAnswer, cpuMs, http, log, machineCpu, makeTarball, memoryOf, parallel, push, randomPackage, root, spread, startCeiling, startCnr, wrk } from './cnr-lib.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const value = (name) => {
  const i = argv.indexOf(name);
  return i < 0 ? undefined : argv[i + 1];
};
const cpuProf = argv.includes('--cpu-prof');
const CFG = {
  packages: quick ? 200 : 10_000,
  runs: Number(value('--runs') ?? (quick ? 2 : 5)),
  seconds: Number(value('--seconds') ?? (quick ? 2 : 10)),
  warmup: quick ? 1 : 3,
  pushBlobs: quick ? 256 : 1024,
};
/** Bump when the seeded content or the store's on-disk form changes: a new cached seed dir. */
const SEED_VERSION = 1;
const SHOW = '/api/v1/packages/bench/show/1.2.0/kpm';
const LIST = '/api/v1/packages';
// Reference cnr-server 0.2.7 under gunicorn (2 workers, filesystem store), measured on this machine.
const REFERENCE = { date: '2026-12-01', show: 1529, blob: 678, list: 102, listPackages: 200, push: 179 };
const TARGET = { show: 15_000, showP99: 10, showOfCeiling: 0.75, blob: 5 * 678, list: 500, push: 5 * 179, registryOfLayout: 0.5, rssMb: 200 };

let work;
const stops = [];
const cleanup = async () => {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  await stopAllRegistries();
  await agent.close().catch(() => {});
  if (work && !cpuProf) await rm(work, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => cleanup().finally(() => process.exit(130)));
process.once('exit', () => {
  if (work && !cpuProf) rmSync(work, { recursive: true, force: true });
});

async function started(promise) {
  const proc = await promise;
  stops.push(() => proc.stop());
  return proc;
}

/** Push the seed: N packages of one release each, among them bench/show (3 releases, a channel) and bench/blob (~100 KiB). */
async function seed(base, n) {
  const names = Array.from({ length: n - 2 }, (_, i) => `ns${String(i % 100).padStart(2, '0')}/pkg${String(i).padStart(5, '0')}`);
  await parallel(names, 16, async (name) => push(base, name, await makeTarball(name.split('/')[1], `{ package: "${name}" }\n`), '1.0.0'));
  for (const release of ['1.0.0', '1.1.0', '1.2.0']) await push(base, 'bench/show', await randomPackage('show', 2048), release);
  const channel = await http(`${base}/api/v1/packages/bench/show/channels/stable/1.2.0`, { method: 'POST' });
  if (channel.status !== 200) throw new Error(`channel: HTTP ${channel.status}`);
  await push(base, 'bench/blob', await randomPackage('blob', 100 * 1024), '1.0.0');
}

/** The seeded layout store, reused from an earlier run when its marker says it is complete. */
async function seededStore(n) {
  const dir = join(tmpdir(), `cnab-oci-bench-cnr-v${SEED_VERSION}-${n}`);
  const marker = join(dir, 'seeded.json');
  const data = join(dir, 'data');
  const done = await readFile(marker, 'utf8').then(JSON.parse, () => undefined);
  if (done?.packages === n) return { data, note: `reused ${dir} (seeded ${done.at} in ${done.seconds.toFixed(0)} s)` };
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  log(`seeding ${n} packages through the API into ${dir}`);
  const t0 = performance.now();
  const server = await startCnr(`oci:${data}`);
  try {
    await seed(server.url, n);
  } finally {
    await server.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  await writeFile(marker, JSON.stringify({ packages: n, seconds, at: new Date().toISOString() }));
  return { data, note: `seeded ${dir} through the API in ${seconds.toFixed(1)} s (${(n / seconds).toFixed(0)} pushes/s, 16 at once)` };
}

async function answer(base, path) {
  const res = await http(`${base}${path}`);
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status} ${res.body.toString().slice(0, 300)}`);
  return res;
}

async function main() {
  const t0 = performance.now();
  if (!existsSync(join(root, 'dist/bin/cnab-oci.js'))) throw new Error('dist/ is missing: run `npm run build` (npm run bench does)');
  work = await mkdtemp(join(tmpdir(), 'cnab-oci-bench-cnr-run-'));
  const load0 = loadavg()[0];
  log(`${quick ? 'quick' : 'full'} run: ${CFG.packages} packages, ${CFG.runs} runs of ${CFG.seconds} s per load, ${cpus().length} CPUs, load average ${load0.toFixed(2)}`);
  const nodeArgs = cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(work, 'profiles')}`] : [];

  // ---- the servers ---------------------------------------------------------------------------
  let store = await seededStore(CFG.packages);
  let layout = await started(startCnr(`oci:${store.data}`, { nodeArgs }));
  const coldListAt = performance.now();
  let listed = JSON.parse((await answer(layout.url, LIST)).body).length;
  const coldListS = (performance.now() - coldListAt) / 1000;
  if (listed !== CFG.packages) {
    log(`the cached seed lists ${listed} packages, not ${CFG.packages}: seeding again`);
    await stops.pop()();
    await rm(join(store.data, '..', 'seeded.json'), { force: true });
    store = await seededStore(CFG.packages);
    layout = await started(startCnr(`oci:${store.data}`, { nodeArgs }));
    listed = JSON.parse((await answer(layout.url, LIST)).body).length;
  }
  log(`seed: ${store.note}`);
  const show = await answer(layout.url, SHOW);
  const blobView = JSON.parse((await answer(layout.url, '/api/v1/packages/bench/blob/1.0.0/kpm')).body);
  const BLOB = `/api/v1/packages/bench/blob/blobs/sha256/${blobView.content.digest}`;
  const blob = await answer(layout.url, BLOB);
  const listBytes = (await answer(layout.url, LIST)).body.length;

  const answersFile = join(work, 'ceiling-answers.json');
  await writeFile(answersFile, JSON.stringify({ [SHOW]: cannedAnswer(show), [BLOB]: cannedAnswer(blob) }));
  const ceiling = await started(startCeiling(answersFile));
  for (const [path, ours] of [[SHOW, show], [BLOB, blob]]) {
    if (!(await answer(ceiling.url, path)).body.equals(ours.body)) throw new Error(`the ceiling does not answer the bytes of ${path}`);
  }

  const registry = await startRegistry(work, 'cnr');
  const remote = await started(startCnr(`${registry.host}/cnrbench`));
  for (const release of ['1.0.0', '1.1.0', '1.2.0']) await push(remote.url, 'bench/show', await randomPackage('show', 2048), release);
  await http(`${remote.url}/api/v1/packages/bench/show/channels/stable/1.2.0`, { method: 'POST' });
  await answer(remote.url, SHOW);

  const pusher = await started(startCnr(`oci:${join(work, 'push-store')}`, { nodeArgs }));
  const blobsFile = join(work, 'push-blobs.txt');
  const pushBlobs = await Promise.all(Array.from({ length: CFG.pushBlobs }, () => randomPackage('pkg', 10 * 1024)));
  await writeFile(blobsFile, `${pushBlobs.map((b) => b.toString('base64')).join('\n')}\n`);
  const pushSize = pushBlobs.reduce((n, b) => n + b.length, 0) / pushBlobs.length;

  // ---- the loads, interleaved run by run -------------------------------------------------------
  // Each load names the processes whose CPU time it costs (per answer: a figure the machine's other load barely moves).
  const loads = {
    ceilingShow: { url: `${ceiling.url}${SHOW}`, pids: [ceiling.pid] },
    show: { url: `${layout.url}${SHOW}`, pids: [layout.pid] },
    ceilingBlob: { url: `${ceiling.url}${BLOB}`, pids: [ceiling.pid] },
    blob: { url: `${layout.url}${BLOB}`, pids: [layout.pid] },
    list: { url: `${layout.url}${LIST}`, pids: [layout.pid] },
    registryShow: { url: `${remote.url}${SHOW}`, pids: [remote.pid, registry.pid] },
  };
  // And the share of the machine's CPU that went to processes other than ours (or to other VMs).
  const ours = [layout, ceiling, remote, registry, pusher].map((p) => p.pid);
  const snapshot = async () => ({ machine: await machineCpu(), ours: await Promise.all(ours.map(cpuMs)), self: process.cpuUsage() });
  const measure = async ({ url, pids }, options) => {
    const [b0, before] = [await snapshot(), await Promise.all(pids.map(cpuMs))];
    const r = await wrk(url, options);
    const [after, b1] = [await Promise.all(pids.map(cpuMs)), await snapshot()];
    const self = process.cpuUsage(b0.self);
    const oursMs = b1.ours.reduce((n, v, i) => n + v - b0.ours[i], 0) + r.wrkCpuMs + (self.user + self.system) / 1000;
    const foreign = b1.machine.busy - b0.machine.busy - oursMs + b1.machine.steal - b0.machine.steal;
    return { ...r, cpuUs: after.map((a, i) => ((a - before[i]) * 1000) / Math.max(1, r.good)), foreignPct: Math.max(0, (100 * foreign) / (b1.machine.total - b0.machine.total)) };
  };
  log(`warming up (${CFG.warmup} s per load)`);
  for (const load of Object.values(loads)) await wrk(load.url, { seconds: CFG.warmup });
  const results = Object.fromEntries([...Object.keys(loads), 'push'].map((k) => [k, []]));
  for (let run = 0; run < CFG.runs; run++) {
    log(`run ${run + 1}/${CFG.runs}: ${Object.keys(loads).join(', ')}`);
    for (const [name, load] of Object.entries(loads)) results[name].push(await measure(load, { seconds: CFG.seconds }));
  }
  const memory = await memoryOf(layout.pid);

  const pushEnv = (prefix) => ({ CNR_BENCH_BLOBS: blobsFile, CNR_BENCH_PUSH_PATH: `/api/v1/packages/push/${prefix}` });
  await wrk(`${pusher.url}/`, { connections: 8, threads: 8, seconds: CFG.warmup, env: pushEnv('warm') });
  let stored = 0;
  for (let run = 0; run < CFG.runs; run++) {
    log(`run ${run + 1}/${CFG.runs}: pushes`);
    const r = await measure({ url: `${pusher.url}/`, pids: [pusher.pid] }, { connections: 8, threads: 8, seconds: CFG.seconds, env: pushEnv(`r${run}`) });
    results.push.push(r);
    for (let c = 1; c <= 8; c++) {
      const res = await http(`${pusher.url}/api/v1/packages/push/r${run}-c${c}`);
      if (res.status === 200) stored += JSON.parse(res.body).length;
    }
  }

  // ---- the table --------------------------------------------------------------------------------
  const s = Object.fromEntries(Object.entries(results).map(([k, rs]) => [k, spread(rs.map((r) => r.rate))]));
  const p99 = { show: spread(results.show.map((r) => r.p99)), ceilingShow: spread(results.ceilingShow.map((r) => r.p99)), registryShow: spread(results.registryShow.map((r) => r.p99)) };
  const problems = Object.entries(results).flatMap(([k, rs]) => rs.filter((r) => r.socket || r.other).map((r) => `${k}: ${[r.other, r.socket ? `${r.socket} socket errors` : ''].filter(Boolean).join(', ')}`));
  const int = (x) => Math.round(x).toLocaleString('en-US');
  const ms = (x) => x.toFixed(x < 10 ? 2 : 1);
  const cell = (sp, unit, f = int) => `${f(sp.median)} (${f(sp.min)}–${f(sp.max)}) ${unit}`;
  const x = (a, b) => `${(a / b).toFixed(a / b < 10 ? 2 : 1)}x`;
  const verdict = (checks) => {
    const failed = checks.filter(([ok]) => !ok).map(([, what]) => what);
    return failed.length === 0 ? 'met' : `NOT met (${failed.join('; ')})`;
  };
  const rows = [];
  const ceilRatio = s.show.median / s.ceilingShow.median;
  rows.push(['show (GET …/bench/show/1.2.0/kpm), layout store', cell(s.show, 'req/s'), cell(s.ceilingShow, 'req/s'), ceilRatio.toFixed(2),
    `${int(REFERENCE.show)} req/s`, x(s.show.median, REFERENCE.show), `>= ${int(TARGET.show)} req/s; >= ${TARGET.showOfCeiling} of ceiling`,
    verdict([[s.show.median >= TARGET.show, `${int(s.show.median)} < ${int(TARGET.show)}`], [ceilRatio >= TARGET.showOfCeiling, `ratio ${ceilRatio.toFixed(2)} < ${TARGET.showOfCeiling}`]])]);
  rows.push(['show p99 latency, layout store', cell(p99.show, 'ms', ms), cell(p99.ceilingShow, 'ms', ms), (p99.show.median / p99.ceilingShow.median).toFixed(2), '', '',
    `< ${TARGET.showP99} ms`, verdict([[p99.show.median < TARGET.showP99, `${ms(p99.show.median)} ms`]])]);
  const blobRatio = s.blob.median / s.ceilingBlob.median;
  rows.push([`blob GET (${(blob.body.length / 1024).toFixed(0)} KiB, …/blobs/sha256/HEX)`, cell(s.blob, 'req/s'), cell(s.ceilingBlob, 'req/s'), blobRatio.toFixed(2),
    `${int(REFERENCE.blob)} req/s`, x(s.blob.median, REFERENCE.blob), `>= ${int(TARGET.blob)} req/s (5x)`, verdict([[s.blob.median >= TARGET.blob, `${int(s.blob.median)} < ${int(TARGET.blob)}`]])]);
  rows.push([`list of ${int(listed)} packages (${(listBytes / 1e6).toFixed(2)} MB JSON)`, cell(s.list, 'req/s'), '', '',
    `${int(REFERENCE.list)} req/s (${REFERENCE.listPackages} packages)`, x(s.list.median, REFERENCE.list), `>= ${TARGET.list} req/s (10,000 packages)`,
    verdict([[s.list.median >= TARGET.list, `${int(s.list.median)} < ${TARGET.list}`], [listed >= 10_000, `${listed} packages only`]])]);
  const non200 = results.push.map((r) => r.other).filter(Boolean);
  rows.push([`pushes, 8 connections, distinct releases of ${(pushSize / 1024).toFixed(1)} KiB packages (200s only)`, cell(s.push, 'pushes/s'), '', '',
    `${int(REFERENCE.push)} pushes/s`, x(s.push.median, REFERENCE.push), `>= ${int(TARGET.push)} pushes/s (5x)`,
    verdict([[s.push.median >= TARGET.push, `${int(s.push.median)} < ${int(TARGET.push)}`], [non200.length === 0, `non-200: ${non200.join(', ')}`]])]);
  const regRatio = s.registryShow.median / s.show.median;
  rows.push(['show, registry store (loopback registry:2, warm)', `${cell(s.registryShow, 'req/s')}; p99 ${ms(p99.registryShow.median)} ms`, '', `${regRatio.toFixed(2)} of layout`, '', '',
    `>= ${TARGET.registryOfLayout} of layout store (within 2x)`, verdict([[regRatio >= TARGET.registryOfLayout, `${regRatio.toFixed(2)} of layout`]])]);
  rows.push([`peak RSS (VmHWM) of cnr serve, ${int(listed)} packages, after show/blob/list loads`, `${memory.hwmMb.toFixed(0)} MB (now ${memory.rssMb.toFixed(0)} MB)`, '', '', '', '',
    `<= ${TARGET.rssMb} MB`, verdict([[memory.hwmMb <= TARGET.rssMb, `${memory.hwmMb.toFixed(0)} MB`]])]);

  const head = ['measure', 'cnr serve (median, min–max)', 'ceiling (bare node:http)', 'ratio', `reference (${REFERENCE.date})`, 'vs reference', 'target', 'verdict'];
  const lines = [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`);
  const minutes = (performance.now() - t0) / 60_000;
  process.stdout.write(`\nCNR server: ${CFG.runs} runs x ${CFG.seconds} s per load, wrk 16 connections (2 threads), pushes 8 connections; ${cpus().length} x ${cpus()[0]?.model ?? 'CPU'}; node ${process.version}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`\nfirst list after the server started (builds the listing of ${int(listed)} packages): ${coldListS.toFixed(1)} s\n`);
  process.stdout.write(`pushes: ${int(results.push.reduce((n, r) => n + r.good, 0))} answered 200, ${int(stored)} releases stored afterwards (the difference: pushes in flight when wrk stopped)\n`);
  const cpu = (k, i = 0) => spread(results[k].map((r) => r.cpuUs[i])).median;
  const us = (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)} ms` : `${int(v)} µs`);
  process.stdout.write(`CPU time per answer (median of runs, all threads of the process): show ${us(cpu('show'))} (ceiling ${us(cpu('ceilingShow'))}); blob ${us(cpu('blob'))} (ceiling ${us(cpu('ceilingBlob'))}); `
    + `list ${us(cpu('list'))}; push ${us(cpu('push'))}; registry-store show ${us(cpu('registryShow'))} in cnr serve + ${us(cpu('registryShow', 1))} in registry:2\n`);
  const foreign = Object.entries(results).map(([k, rs]) => { const f = spread(rs.map((r) => r.foreignPct)); return `${k} ${f.median.toFixed(0)}% (${f.max.toFixed(0)}%)`; });
  process.stdout.write(`CPU taken by other processes (and other VMs' steal) during the loads, share of all CPUs, median (max) of runs: ${foreign.join(', ')}\n`);
  if (problems.length) process.stdout.write(`errors seen: ${problems.join('; ')}\n`);
  if (quick) process.stdout.write(`quick run: ${CFG.packages} packages and ${CFG.seconds} s loads, a check that the bench runs; the verdicts are for full runs\n`);
  process.stdout.write(`seed: ${store.note}; took ${minutes.toFixed(1)} min in all; load average ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end\n`);
  if (cpuProf) process.stdout.write(`CPU profiles of the layout and push servers: ${join(work, 'profiles')} (written when they stop)\n`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench cnr: failed: ${err.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
