// The registry -> registry rows: big layers (400 MB; quick 32 MB) and medium (100 MB; quick
// 8 MB), each 4 images of 4 random layers in a bundle, copied with `cnab-oci copy` against the
// skopeo script (each image by digest, then the bundle's tag, with copy --all) and the raw relay
// (bench/relay.mjs), every rep on fresh destinations in turn: cnab-oci, skopeo, relay (and, for
// big, raw ingest). The re-copy row (everything already there) runs in the big rows' reps; the
// same-registry relocation row is a single run.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { agent, bundleJson, makeImage, pushImage } from './data.mjs';
import { cnabCopy, cnabPush, counted, ctx, fresh, log, skopeoBundleScript, statsOf } from './harness.mjs';
import { assertBlobs, ingest, relay } from './relay.mjs';
import { fmtCount, fmtPaired, fmtRate, fmtTimes, median, paired, pct, times, yn } from './stats.mjs';

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Every blob (descriptor) under a manifest or index, walked with plain GETs, each digest once. */
async function blobsOf(host, repo, reference, seen = new Map()) {
  const res = await request(`http://${host}/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT }, dispatcher: agent });
  if (res.statusCode !== 200) throw new Error(`GET ${repo}:${reference}: HTTP ${res.statusCode}`);
  const doc = await res.body.json();
  for (const m of doc.manifests ?? []) await blobsOf(host, repo, m.digest, seen);
  for (const d of [doc.config, ...(doc.layers ?? [])].filter(Boolean)) seen.set(d.digest, d);
  return [...seen.values()];
}

/** 4 images of 4 layers of `layerSize` random bytes on A (src/<name>-i:v1), pushed as the bundle A/bench/<name>:1. */
export async function makeBundle(A, name, layerSize) {
  log(`${name}: generating 4 images x 4 random layers of ${(layerSize / 1e6).toFixed(1)} MB`);
  const images = Array.from({ length: 4 }, (_, i) => makeImage([layerSize, layerSize, layerSize, layerSize], `${name}-${i}`));
  for (const [i, im] of images.entries()) await pushImage(A.host, `src/${name}-${i}`, 'v1', im);
  const bundleFile = join(ctx.work, `${name}-bundle.json`);
  await writeFile(bundleFile, bundleJson(name, images.map((_, i) => `${A.host}/src/${name}-${i}:v1`)));
  const repo = `bench/${name}`;
  await cnabPush(bundleFile, `${A.host}/${repo}:1`);
  // What the relay moves: every blob of the bundle as pushed (the images' and the bundle's own).
  const descs = await blobsOf(A.host, repo, '1');
  const missing = images.flatMap((im) => im.blobs).filter((b) => !descs.some((d) => d.digest === b.desc.digest));
  if (missing.length) throw new Error(`${name}: ${missing.length} image blobs not under ${repo}:1`);
  return {
    name,
    repo,
    ref: `${A.host}/${repo}:1`,
    descs,
    bytes: descs.reduce((n, d) => n + d.size, 0),
    imageBlobs: images.flatMap((im) => im.blobs),
    digests: images.map((im) => im.manifest.desc.digest),
  };
}

/**
 * `reps` turns of: cnab-oci copy, skopeo script, relay (unless !withRelay; raw ingest with `withIngest`), each
 * to a fresh destination; with `recopy`, each contender copies again onto what it just copied
 * (counted). After every relay, a HEAD per blob checks the destination has them all.
 */
export async function copyRuns(A, bundle, { reps, recopy = false, withRelay = true, withIngest = false }) {
  const t = { cnab: [], skopeo: [], relay: [], ingest: [] };
  const re = { cnab: [], skopeo: [], cnabReq: [], skopeoReq: [], debugLines: [] };
  const dstRef = (B) => `${B.host}/${bundle.repo}:1`;
  const script = (B) => skopeoBundleScript(`${A.host}/${bundle.repo}`, `${B.host}/${bundle.repo}`, bundle.digests, '1');
  for (let rep = 0; rep < reps; rep++) {
    const step = (what) => log(`${bundle.name}, rep ${rep + 1}/${reps}: ${what}`);
    step('cnab-oci copy');
    await fresh('dst', async (B) => {
      t.cnab.push((await cnabCopy(bundle.ref, dstRef(B))).ms);
      if (!recopy) return;
      const c = await counted([A, B], () => cnabCopy(bundle.ref, dstRef(B), { debug: true }));
      re.cnab.push(c.result.ms);
      re.cnabReq.push(c.requests);
      re.debugLines.push(c.result.stderr.split('\n').filter((l) => / -> \d{3}$/.test(l)).length);
    });
    step('skopeo script');
    await fresh('dst', async (B) => {
      t.skopeo.push((await script(B)).ms);
      if (!recopy) return;
      const c = await counted([A, B], () => script(B));
      re.skopeo.push(c.result.ms);
      re.skopeoReq.push(c.requests);
    });
    if (withRelay) step(`relay, ${bundle.descs.length} blobs at once`);
    if (withRelay) await fresh('dst', async (B) => {
      const dst = { host: B.host, repo: bundle.repo };
      const r = await relay({ host: A.host, repo: bundle.repo }, dst, bundle.descs);
      if (r.bytes !== bundle.bytes) throw new Error(`relay moved ${r.bytes} bytes, want ${bundle.bytes}`);
      const there = await assertBlobs(dst, bundle.descs);
      if (rep === 0) log(`${bundle.name}: relay checked: ${there.count} blobs, ${there.bytes} bytes at the destination`);
      t.relay.push(r.ms);
    });
    if (withIngest) {
      step(`raw ingest, ${bundle.imageBlobs.length} blobs at once`);
      await fresh('dst', async (B) => t.ingest.push((await ingest({ host: B.host, repo: 'raw/ingest' }, bundle.imageBlobs)).ms));
    }
  }
  return { t, re };
}

const mb = (bytes) => `${(bytes / 1e6).toFixed(0)} MB`;

/** Relay and cnab-oci against it: `relay 1.90 s (...), 210 MB/s: cnab-oci = 61% (...) of its speed`. */
function relayText(bundle, t) {
  return `relay (each blob's GET piped into a PUT, all at once) ${fmtRate(bundle.bytes, t.relay)}: cnab-oci = ${fmtPaired(paired(t.relay, t.cnab))} of its speed`;
}

export function bigRow(bundle, { t }) {
  const vsSkopeo = paired(t.cnab, t.skopeo);
  const vsRelay = paired(t.relay, t.cnab);
  const ingestBytes = bundle.imageBlobs.reduce((n, b) => n + b.desc.size, 0);
  return {
    scenario: `big layers: 4 images, ${mb(bundle.bytes)}, registry -> registry`,
    cnab: fmtRate(bundle.bytes, t.cnab),
    skopeo: fmtRate(bundle.bytes, t.skopeo),
    other: `cnab-oci time = ${fmtPaired(vsSkopeo, times)} skopeo's; ${relayText(bundle, t)}; raw ingest from memory ${fmtRate(ingestBytes, t.ingest)}`,
    target: "<= skopeo; >= 90% of the relay's speed",
    met: `${yn(vsSkopeo.median <= 1)}; ${yn(vsRelay.median >= 0.9)}`,
  };
}

export function mediumRow(bundle, { t }) {
  const vsSkopeo = paired(t.cnab, t.skopeo);
  return {
    scenario: `medium: 4 images, ${mb(bundle.bytes)}, registry -> registry`,
    cnab: fmtRate(bundle.bytes, t.cnab),
    skopeo: fmtRate(bundle.bytes, t.skopeo),
    other: `cnab-oci time = ${fmtPaired(vsSkopeo, times)} skopeo's; ${relayText(bundle, t)}`,
    target: '<= 1.0x skopeo copy --all',
    met: yn(vsSkopeo.median <= 1),
  };
}

export function recopyRow({ re }) {
  const vs = paired(re.cnab, re.skopeo);
  return {
    scenario: 're-copy of the big bundle, everything already there',
    cnab: `${fmtCount(re.cnabReq)} requests, ${fmtTimes(re.cnab)}`,
    skopeo: `${fmtCount(re.skopeoReq)} requests, ${fmtTimes(re.skopeo)}`,
    other: `cnab-oci --debug: ${fmtCount(re.debugLines)} requests logged; cnab-oci time = ${fmtPaired(vs, times)} skopeo's`,
    target: 'none set (fewer requests; time)',
    met: `${yn(median(re.cnabReq) < median(re.skopeoReq))}; ${yn(vs.median < 1)}`,
  };
}

/** Same-registry relocation, one run each: cnab-oci should mount every blob. */
export async function relocRow(A, bundle) {
  log('same-registry relocation');
  const cn = await counted([A], () => cnabCopy(bundle.ref, `${A.host}/reloc/cnab:1`));
  const stats = statsOf(cn.result);
  const sk = await counted([A], () => skopeoBundleScript(`${A.host}/${bundle.repo}`, `${A.host}/reloc/skopeo`, bundle.digests, '1'));
  return {
    scenario: `same-registry relocation (${bundle.imageBlobs.length} blobs): blobs uploaded`,
    cnab: `${cn.uploads} uploaded, ${cn.mounts} mounted, ${fmtTimes([cn.result.ms])}`,
    skopeo: `${sk.uploads} uploaded, ${sk.mounts} mounted, ${fmtTimes([sk.result.ms])}`,
    other: `cnab-oci --json stats: ${stats.mounts} mounts, ${stats.objectsCopied} objects copied; cnab-oci time = ${pct(cn.result.ms / sk.result.ms)} of skopeo's`,
    target: '0 uploads (all mounts)',
    met: yn(cn.uploads === 0),
  };
}
