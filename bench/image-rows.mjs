// The rows about images rather than bundles of big layers: many small images (`cnab-oci push`
// of a bundle naming them, against one `skopeo copy` per image; time and requests) and one huge
// layer (speed and peak RSS). Every rep runs cnab-oci then skopeo, each to a fresh destination.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleJson, makeImage, pushHugeImage, pushImage } from './data.mjs';
import { cnabCopy, cnabPush, counted, ctx, fresh, log, skopeoCopy } from './harness.mjs';
import { fmtCount, fmtMB, fmtPaired, fmtRate, fmtTimes, median, paired, pct, yn } from './stats.mjs';

/**
 * The fewest requests that copy one image of L layers and a config, all absent at the
 * destination, by tag from one registry to another: 1 GET of the manifest by tag at the source;
 * per blob 1 GET at the source, then a POST and a monolithic PUT at the destination (3); 1 PUT of
 * the manifest. No HEAD per blob is counted as needed: the destination is empty here, and a PUT
 * of a blob it already had would cost bytes, not correctness (with one it is 1 + 4x(L+1) + 1).
 * No /v2/ ping either (anonymous access). The push also uploads the bundle itself (its config
 * blob, POST + PUT, and its index, PUT: 3 requests in all), which the per-image figure of
 * cnab-oci includes.
 */
export const minimumPerImage = (L) => 1 + 3 * (L + 1) + 1;

export async function smallRow(A, { images, layers, reps }) {
  log(`many small images: ${images} images in ${images} repositories`);
  const refs = [];
  for (let i = 0; i < images; i++) {
    const repo = `small/img-${String(i).padStart(2, '0')}`;
    await pushImage(A.host, repo, 'v1', makeImage(layers, repo));
    refs.push({ repo, ref: `${A.host}/${repo}:v1` });
  }
  const bundleFile = join(ctx.work, 'small-bundle.json');
  await writeFile(bundleFile, bundleJson('small', refs.map((r) => r.ref)));
  const t = { cnab: [], skopeo: [] };
  const req = { cnab: [], skopeo: [] };
  for (let rep = 0; rep < reps; rep++) {
    log(`many small images, rep ${rep + 1}/${reps}: cnab-oci push, then skopeo per image`);
    await fresh('dst', async (B) => {
      const c = await counted([A, B], () => cnabPush(bundleFile, `${B.host}/bench/small:1`));
      t.cnab.push(c.result.ms);
      req.cnab.push(c.requests);
    });
    await fresh('dst', async (B) => {
      const c = await counted([A, B], async () => {
        const started = performance.now();
        for (const r of refs) await skopeoCopy(r.ref, `${B.host}/bench/small:${r.repo.split('/')[1]}`);
        return { ms: performance.now() - started };
      });
      t.skopeo.push(c.result.ms);
      req.skopeo.push(c.requests);
    });
  }
  const L = layers.length;
  const perImage = (xs) => `${(median(xs) / images).toFixed(1)} requests per image (${fmtCount(xs)} in all)`;
  const vs = paired(t.cnab, t.skopeo);
  return {
    scenario: `many small images: bundle of ${images} images (${L} layers each) from ${images} repositories, push (fixup)`,
    cnab: `${fmtTimes(t.cnab)}; ${perImage(req.cnab)}`,
    skopeo: `${fmtTimes(t.skopeo)}, ${(median(t.skopeo) / images).toFixed(0)} ms per image; ${perImage(req.skopeo)}`,
    other: `cnab-oci = ${fmtPaired(vs)} of skopeo's time; protocol minimum 1 + 3x(${L}+1) + 1 = ${minimumPerImage(L)} requests per image (GET manifest; GET, POST, PUT per blob; PUT manifest; no HEADs: the blobs are absent)`,
    target: '<= 50% of skopeo',
    met: yn(vs.median <= 0.5),
  };
}

export async function hugeRow(A, { size, reps }) {
  const label = size >= 2 ** 30 ? `${size / 2 ** 30} GiB` : `${size / 2 ** 20} MiB`;
  log(`one ${label} layer: generating`);
  const { layer } = await pushHugeImage(A.host, 'src/huge', 'v1', size);
  const bundleFile = join(ctx.work, 'huge-bundle.json');
  await writeFile(bundleFile, bundleJson('huge', [`${A.host}/src/huge:v1`]));
  await cnabPush(bundleFile, `${A.host}/bench/huge:1`);
  const t = { cnab: [], skopeo: [] };
  const rss = { cnab: [], skopeo: [] };
  for (let rep = 0; rep < reps; rep++) {
    log(`one ${label} layer, rep ${rep + 1}/${reps}: cnab-oci copy, then skopeo, under /usr/bin/time -v`);
    const cn = await fresh('dst', (B) => cnabCopy(`${A.host}/bench/huge:1`, `${B.host}/bench/huge:1`, { rss: true }));
    const sk = await fresh('dst', (B) => skopeoCopy(`${A.host}/bench/huge:1`, `${B.host}/bench/huge:1`, { rss: true }));
    t.cnab.push(cn.ms);
    t.skopeo.push(sk.ms);
    rss.cnab.push(cn.maxRssKb);
    rss.skopeo.push(sk.maxRssKb);
  }
  const peak = (kbs) => `${fmtMB(Math.max(...kbs))} peak RSS${kbs.length > 1 ? ` (max of ${kbs.length})` : ''}`;
  const speed = paired(t.skopeo, t.cnab); // skopeo's time over ours: our speed as a share of skopeo's
  return {
    scenario: `one ${label} layer, registry -> registry: speed and peak RSS`,
    cnab: `${fmtRate(layer.size, t.cnab)}; ${peak(rss.cnab)}`,
    skopeo: `${fmtRate(layer.size, t.skopeo)}; ${peak(rss.skopeo)}`,
    other: `cnab-oci = ${fmtPaired(speed, pct)} of skopeo's speed`,
    target: ">= skopeo's speed; peak RSS <= 150 MB",
    met: `${yn(speed.median >= 1)}; ${yn(Math.max(...rss.cnab) / 1024 <= 150)}`,
  };
}
