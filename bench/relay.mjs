// The ceilings of the registry -> registry rows, with undici and nothing of cnab-oci:
//
// - the raw relay (the big row's target): every blob of the bundle at once, a GET on the source
//   whose response body is streamed straight into a monolithic upload on the destination (POST,
//   then PUT <location>?digest=... with that body and its content-length). No hashing (registry:2
//   checks the digest of what it is PUT), no retries, no HEADs, no manifests: blobs only.
// - raw ingest (a secondary figure): the same blobs uploaded from memory, all at once, so only
//   the destination works.
//
// Both use an agent of their own with no connection limit, so "all at once" is every blob on its
// own connection on each side.
import { Agent, request } from 'undici';

const dispatcher = new Agent({ keepAliveTimeout: 30_000 });
export const closeRelay = () => dispatcher.close().catch(() => {});

async function expect(res, status, what) {
  if (res.statusCode !== status) {
    const text = await res.body.text().catch(() => '');
    throw new Error(`${what}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
  }
}

const startUpload = (host, repo) => request(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST', dispatcher });

async function finishUpload(host, repo, post, desc, body) {
  await expect(post, 202, `POST ${host}/${repo}`);
  await post.body.dump();
  const url = new URL(post.headers.location, `http://${host}`);
  url.searchParams.set('digest', desc.digest);
  const put = await request(url, {
    method: 'PUT',
    body,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
    dispatcher,
  });
  await expect(put, 201, `PUT ${host}/${repo}@${desc.digest}`);
  await put.body.dump();
}

/**
 * Relay these blobs (descriptors) from src to dst, all at once: { ms, bytes }, bytes being the
 * content-lengths of the GETs, each checked against its descriptor.
 */
export async function relay(src, dst, descs) {
  let bytes = 0;
  const started = performance.now();
  await Promise.all(descs.map(async (desc) => {
    const [get, post] = await Promise.all([
      request(`http://${src.host}/v2/${src.repo}/blobs/${desc.digest}`, { dispatcher }),
      startUpload(dst.host, dst.repo),
    ]);
    try {
      await expect(get, 200, `GET ${src.host}/${src.repo}@${desc.digest}`);
      const length = Number(get.headers['content-length']);
      if (length !== desc.size) throw new Error(`GET ${desc.digest}: ${length} bytes, want ${desc.size}`);
      bytes += length;
      await finishUpload(dst.host, dst.repo, post, desc, get.body);
    } finally {
      get.body.destroy();
    }
  }));
  return { ms: performance.now() - started, bytes };
}

/** Upload these blobs ({ desc, data }) from memory to dst, all at once: { ms }. */
export async function ingest(dst, blobs) {
  const started = performance.now();
  await Promise.all(blobs.map(async (b) => finishUpload(dst.host, dst.repo, await startUpload(dst.host, dst.repo), b.desc, b.data)));
  return { ms: performance.now() - started };
}

/** HEAD every blob on dst; throws unless each is there with its size. Resolves with { count, bytes }. */
export async function assertBlobs(dst, descs) {
  let bytes = 0;
  await Promise.all(descs.map(async (desc) => {
    const res = await request(`http://${dst.host}/v2/${dst.repo}/blobs/${desc.digest}`, { method: 'HEAD', dispatcher });
    await res.body.dump();
    const length = Number(res.headers['content-length']);
    if (res.statusCode !== 200 || length !== desc.size) {
      throw new Error(`HEAD ${dst.host}/${dst.repo}@${desc.digest}: HTTP ${res.statusCode}, ${length} bytes, want ${desc.size}`);
    }
    bytes += length;
  }));
  return { count: descs.length, bytes };
}
