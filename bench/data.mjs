// Benchmark content: images whose layers are incompressible (random bytes in a stored-block gzip
// stream, so every tool sees a real gzip layer and none recompresses it), pushed with plain
// HTTP requests and nothing of cnab-oci.
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { gzipSync, createGzip } from 'node:zlib';
import { Agent, request } from 'undici';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** One connection pool for the bench's own requests (data set-up and raw ingest). */
export const agent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });

const sha256 = (data) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** A gzip member holding `size` random bytes uncompressed (level 0: stored blocks). */
export function randomLayer(size) {
  const raw = randomBytes(size);
  const data = gzipSync(raw, { level: 0 });
  return { desc: { mediaType: OCI_LAYER, digest: sha256(data), size: data.length }, data, diffId: sha256(raw) };
}

/** An image with layers of these (uncompressed) sizes: its blobs and manifest, all in memory. */
export function makeImage(layerSizes, label) {
  const layers = layerSizes.map(randomLayer);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Labels: { 'bench.image': label } },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  }));
  const configDesc = { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length };
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: configDesc,
    layers: layers.map((l) => l.desc),
  }));
  return {
    blobs: [{ desc: configDesc, data: config }, ...layers.map(({ desc, data }) => ({ desc, data }))],
    manifest: { desc: { mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length }, data: manifest },
  };
}

async function ok(res, want, what) {
  if (!want.includes(res.statusCode)) {
    const text = await res.body.text().catch(() => '');
    throw new Error(`${what}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
  }
  await res.body.dump();
  return res;
}

/** POST + one monolithic PUT: the least a client can do to upload a blob. */
export async function putBlob(host, repo, desc, data) {
  const start = await ok(await request(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST', dispatcher: agent }), [202], `POST ${repo}`);
  const url = new URL(start.headers.location, `http://${host}`);
  url.searchParams.set('digest', desc.digest);
  await ok(await request(url, {
    method: 'PUT',
    body: data,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
    dispatcher: agent,
  }), [201], `PUT ${repo}@${desc.digest}`);
}

export async function putManifest(host, repo, reference, desc, data) {
  await ok(await request(`http://${host}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    body: data,
    headers: { 'content-type': desc.mediaType },
    dispatcher: agent,
  }), [201], `PUT ${repo}:${reference}`);
}

export async function pushImage(host, repo, tag, image, concurrency = 4) {
  await parallel(image.blobs, concurrency, (b) => putBlob(host, repo, b.desc, b.data));
  await putManifest(host, repo, tag, image.manifest.desc, image.manifest.data);
}

/**
 * An image with one huge layer generated while it is uploaded (one streamed PATCH, then the
 * digest PUT), so nothing of its size is held in memory or written to a temporary file.
 */
export async function pushHugeImage(host, repo, tag, rawSize) {
  const hash = createHash('sha256');
  const diff = createHash('sha256');
  let size = 0;
  const gzip = createGzip({ level: 0 });
  (async () => {
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (let left = rawSize; left > 0; left -= chunk.length) {
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      randomFillSync(part);
      diff.update(part);
      if (!gzip.write(Buffer.from(part))) await new Promise((r) => gzip.once('drain', r));
    }
    gzip.end();
  })().catch((err) => gzip.destroy(err));
  async function* body() {
    for await (const data of gzip) {
      hash.update(data);
      size += data.length;
      yield data;
    }
  }
  const start = await ok(await request(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST', dispatcher: agent }), [202], `POST ${repo}`);
  const patch = await ok(await request(new URL(start.headers.location, `http://${host}`), {
    method: 'PATCH', body: body(), headers: { 'content-type': 'application/octet-stream' }, dispatcher: agent,
  }), [202], `PATCH ${repo}`);
  const layer = { mediaType: OCI_LAYER, digest: `sha256:${hash.digest('hex')}`, size };
  const url = new URL(patch.headers.location, `http://${host}`);
  url.searchParams.set('digest', layer.digest);
  await ok(await request(url, { method: 'PUT', headers: { 'content-length': '0' }, dispatcher: agent }), [201], `PUT ${repo} huge`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${diff.digest('hex')}`] } }));
  const configDesc = { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length };
  await putBlob(host, repo, configDesc, config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers: [layer] }));
  const desc = { mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length };
  await putManifest(host, repo, tag, desc, manifest);
  return { layer, manifest: desc };
}

/** A CNAB bundle naming these images: the first is the invocation image, the rest components. */
export function bundleJson(name, images) {
  const [first, ...rest] = images;
  return JSON.stringify({
    schemaVersion: 'v1.2.0',
    name,
    version: '1.0.0',
    invocationImages: [{ imageType: 'docker', image: first }],
    images: Object.fromEntries(rest.map((image, i) => [`c${String(i + 1).padStart(2, '0')}`, { imageType: 'docker', image }])),
  }, null, 2);
}

/** Run `fn` over `items`, at most `limit` at once. */
export async function parallel(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export { randomBytes };
