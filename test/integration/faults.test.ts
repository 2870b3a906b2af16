import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBundle } from '../../src/cnab/index.js';
import { MemoryTarget } from '../../src/content/memory.js';
import { readAll } from '../../src/content/read.js';
import { createImageResolver, openLocation } from '../../src/ops/locations.js';
import { pullBundle } from '../../src/ops/pull.js';
import { pushBundle } from '../../src/ops/push.js';
import type { Descriptor } from '../../src/oci/schemas.js';
import { copyGraph } from '../../src/transfer/copy.js';
import { digestOf } from '../../src/oci/digest.js';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.js';
import { staticCredentials } from '../../src/registry/credentials.js';
import { startBlobOrigin, startFaultProxy, type FaultPlan, type FaultProxy } from '../helpers/fault-proxy.js';
import { runCli } from '../helpers/cli.js';
import { blob, pushImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const lines: string[] = [];
/** A client through the proxy with fast retries (the policy is the default one, only the delays shrink). */
function proxied(options: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({ retryDelay: 5, debug: (l) => lines.push(l), ...options });
}

/** Every fault a network or a busy registry produces; request bodies are not flipped (TCP and TLS prevent that). */
const NETWORK_FAULTS: FaultPlan['faults'] = [
  'request:503', 'request:429', 'request:reset', 'request:truncate', 'request:slow',
  'response:503', 'response:429', 'response:reset', 'response:truncate', 'response:flip', 'response:slow',
];

/** Push a bundle whose invocation image is `image` and which shares `shared`, then pull it back. */
async function pushAndPull(client: RegistryClient, registryHost: string, name: string, images: { invocation: string; shared: string }, tag: string) {
  const { bundle } = parseBundle(Buffer.from(JSON.stringify({
    schemaVersion: 'v1.2.0',
    name,
    version: '1.0.0',
    invocationImages: [{ imageType: 'oci', image: images.invocation }],
    images: { shared: { imageType: 'oci', image: images.shared } },
  })), `${name}.json`);
  const destination = await openLocation(`${registryHost}/rounds/${name}:${tag}`, client, { create: true });
  const fallbacks: string[] = [];
  const pushed = await pushBundle(bundle, { destination, resolver: createImageResolver(client, []), concurrency: 4, onFallback: (m) => fallbacks.push(m) });
  // A fault must never be mistaken for a registry refusing a media type.
  expect(fallbacks).toEqual([]);
  const source = await openLocation(`${registryHost}/rounds/${name}:${tag}`, client, { create: false });
  const pulled = await pullBundle(source);
  return { pushed, pulled };
}

/** Read the whole graph under `root` from `registryHost/repo` without the proxy, verifying every byte. */
async function verifyGraph(direct: RegistryClient, repo: string, root: Descriptor): Promise<number> {
  const stats = await copyGraph(direct.repository(parseReference(repo)), new MemoryTarget(), root);
  return stats.objectsCopied;
}

describe('resumable transfers through a fault-injecting proxy', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let direct: RegistryClient;
  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    direct = new RegistryClient();
  });
  afterAll(async () => {
    await direct?.close();
    await proxy?.stop();
    await registry?.stop();
  });

  const patchAt = (start: number) => (r: { method: string; headers: Record<string, unknown> }) =>
    r.method === 'PATCH' && String(r.headers['content-range']).startsWith(`${start}-`);

  it('continues a chunked upload from the offset the registry reports after a mid-PATCH reset', async () => {
    const client = proxied({ chunkThreshold: 1024, chunkSize: 1024 });
    const repo = client.repository(parseReference(`${proxy.host}/faults/chunked`));
    const big = blob(randomBytes(5000), 'application/octet-stream');
    // Connections cut while sending the first and the fourth chunk.
    proxy.setPlan({
      rules: [
        { match: patchAt(0), kind: 'reset', phase: 'request', times: 1 },
        { match: patchAt(3072), kind: 'reset', phase: 'request', times: 1 },
      ],
    });
    const resets = proxy.counts['request:reset'] ?? 0;
    const from = proxy.log.length;
    await repo.push(big.desc, Readable.from([Buffer.from(big.data)]));
    const log = proxy.log.slice(from);
    expect(proxy.counts['request:reset']).toBe(resets + 2);
    // One upload session, continued: no second POST, and no chunk before the failed one sent again.
    expect(log.filter((e) => e.method === 'POST')).toHaveLength(1);
    const ranges = log.filter((e) => e.method === 'PATCH').map((e) => e.contentRange);
    expect(ranges).toEqual(['0-1023', '0-1023', '1024-2047', '2048-3071', '3072-4095', '3072-4095', '4096-4999']);
    // After each failure the client asked the registry where the upload stood.
    expect(log.filter((e) => e.method === 'GET' && e.url.includes('/blobs/uploads/'))).toHaveLength(2);
    expect(log.filter((e) => e.method === 'PUT' && e.url.includes(`digest=${encodeURIComponent(big.desc.digest)}`) && e.status === 201)).toHaveLength(1);
    const back = await readAll(await direct.repository(parseReference(`${registry.host}/faults/chunked`)).fetch(big.desc), 10_000);
    expect(digestOf(back)).toBe(big.desc.digest);
    await client.close();
  });

  it('starts a chunked upload again when the registry dropped the session (a PATCH answer lost)', async () => {
    const client = proxied({ chunkThreshold: 1024, chunkSize: 1024 });
    const repo = client.repository(parseReference(`${proxy.host}/faults/chunked-lost`));
    const big = blob(randomBytes(3000), 'application/octet-stream');
    // The registry takes the chunk at 1024 but its answer (with the next Location) never arrives:
    // distribution cancels a session addressed with a stale Location, so the blob starts again.
    proxy.setPlan({ rules: [{ match: patchAt(1024), kind: 'reset', phase: 'response', times: 1 }] });
    const resets = proxy.counts['response:reset'] ?? 0;
    const from = proxy.log.length;
    await repo.push(big.desc, big.data);
    expect(proxy.counts['response:reset']).toBe(resets + 1);
    const log = proxy.log.slice(from);
    expect(log.filter((e) => e.method === 'POST')).toHaveLength(2);
    expect(log.filter((e) => e.method === 'PATCH').map((e) => e.contentRange)).toEqual(['0-1023', '1024-2047', '0-1023', '1024-2047', '2048-2999']);
    expect(await direct.repository(parseReference(`${registry.host}/faults/chunked-lost`)).exists(big.desc)).toBe(true);
    await client.close();
  });

  it('streams a large blob in one PATCH and, after a reset, goes on from the registry\'s offset without reading the source again', async () => {
    const client = proxied({ chunkThreshold: 1024 });
    const repo = client.repository(parseReference(`${proxy.host}/faults/one-patch`));
    // Over the 4 MiB that chunks were before: one PATCH now carries all of it.
    const big = blob(randomBytes(5_000_000), 'application/octet-stream');
    proxy.setPlan({ rules: [{ match: patchAt(0), kind: 'reset', phase: 'request', times: 1 }] });
    const from = proxy.log.length;
    // A stream can be read once: a new start of the upload would have nothing to send.
    await repo.push(big.desc, Readable.from([Buffer.from(big.data)]));
    const log = proxy.log.slice(from);
    expect(log.filter((e) => e.method === 'POST')).toHaveLength(1);
    expect(log.filter((e) => e.method === 'PATCH').map((e) => e.contentRange)).toEqual(['0-4999999', '0-4999999']);
    expect(log.filter((e) => e.method === 'GET' && e.url.includes('/blobs/uploads/'))).toHaveLength(1);
    const back = await readAll(await direct.repository(parseReference(`${registry.host}/faults/one-patch`)).fetch(big.desc), 6_000_000);
    expect(digestOf(back)).toBe(big.desc.digest);
    await client.close();
  });

  it('starts a resumable upload again when the PATCH reached the registry in part (distribution then drops the session)', async () => {
    const client = proxied({ chunkThreshold: 1024 });
    const repo = client.repository(parseReference(`${proxy.host}/faults/half-patch`));
    const big = blob(randomBytes(100_000), 'application/octet-stream');
    proxy.setPlan({ rules: [{ match: patchAt(0), kind: 'truncate', phase: 'request', times: 1 }] });
    const truncated = proxy.counts['request:truncate'] ?? 0;
    const from = proxy.log.length;
    await repo.push(big.desc, big.data);
    expect(proxy.counts['request:truncate']).toBe(truncated + 1);
    const log = proxy.log.slice(from);
    expect(log.filter((e) => e.method === 'POST')).toHaveLength(2);
    expect(await direct.repository(parseReference(`${registry.host}/faults/half-patch`)).exists(big.desc)).toBe(true);
    await client.close();
  });

  it('refuses a resumable upload whose source has more or fewer bytes than its descriptor, and commits nothing', async () => {
    const client = proxied({ chunkThreshold: 1024 });
    const repo = client.repository(parseReference(`${proxy.host}/faults/wrong-size`));
    const big = blob(randomBytes(50_000), 'application/octet-stream');
    proxy.setPlan({ rules: [] });
    await expect(repo.push(big.desc, Readable.from([Buffer.from(big.data), Buffer.from('x')]))).rejects.toThrow(/digest mismatch.*more than 50000 bytes/);
    await expect(repo.push(big.desc, Readable.from([Buffer.from(big.data).subarray(0, 40_000)]))).rejects.toThrow(/digest mismatch.*40000 bytes, expected 50000/);
    expect(await direct.repository(parseReference(`${registry.host}/faults/wrong-size`)).exists(big.desc)).toBe(false);
    await client.close();
  });

  it('honours Retry-After, backs off after a 503, and never retries a 4xx that cannot change', async () => {
    const repo = direct.repository(parseReference(`${registry.host}/faults/retry`));
    const b = blob(randomBytes(100), 'application/octet-stream');
    await repo.push(b.desc, b.data);
    const client = proxied({ retryDelay: 150 });
    const via = client.repository(parseReference(`${proxy.host}/faults/retry`));
    const forBlob = (method: string) => (r: { method: string; url: string }) => r.method === method && r.url.endsWith(`/blobs/${b.desc.digest}`);
    proxy.setPlan({
      retryAfter: '1',
      rules: [
        { match: forBlob('HEAD'), kind: '429', phase: 'request', times: 1 },
        { match: forBlob('GET'), kind: '503', phase: 'response', times: 1 },
      ],
    });
    const from = proxy.log.length;
    expect(await via.exists(b.desc)).toBe(true);
    expect(digestOf(await readAll(await via.fetch(b.desc)))).toBe(b.desc.digest);
    const heads = proxy.log.slice(from).filter((e) => forBlob('HEAD')(e));
    const gets = proxy.log.slice(from).filter((e) => forBlob('GET')(e));
    expect(heads.map((e) => e.status)).toEqual([429, 200]);
    expect(heads[1]!.at - heads[0]!.at).toBeGreaterThanOrEqual(950); // Retry-After: 1
    expect(gets.map((e) => e.status)).toEqual([503, 200]);
    expect(gets[1]!.at - gets[0]!.at).toBeGreaterThanOrEqual(140); // first backoff (150 ms, plus jitter)

    // A 404 and a 400 are answers, not accidents: asked once.
    proxy.setPlan({});
    const mark = proxy.log.length;
    await expect(via.resolve('no-such-tag')).rejects.toThrow(/no-such-tag: not found/);
    const garbage = Buffer.from('this is not JSON');
    await expect(via.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(garbage), size: garbage.length }, garbage)).rejects.toThrow(/HTTP 400/);
    const after = proxy.log.slice(mark);
    expect(after.filter((e) => e.url.endsWith('/manifests/no-such-tag'))).toHaveLength(1);
    expect(after.filter((e) => e.method === 'PUT')).toHaveLength(1);
    await client.close();
  });

  it('resumes a cut-short blob download with a Range request and verifies the whole', async () => {
    const repo = direct.repository(parseReference(`${registry.host}/faults/range`));
    const small = blob(randomBytes(64 * 1024), 'application/octet-stream');
    const large = blob(randomBytes(5 * 1024 * 1024 + 17), 'application/octet-stream');
    await repo.push(small.desc, small.data);
    await repo.push(large.desc, large.data);
    const client = proxied();
    const via = client.repository(parseReference(`${proxy.host}/faults/range`));
    for (const b of [small, large]) {
      proxy.setPlan({ rules: [{ match: (r) => r.method === 'GET' && r.url.endsWith(`/blobs/${b.desc.digest}`) && !r.headers.range, kind: 'truncate', phase: 'response', times: 1 }] });
      const before = proxy.counts['response:truncate'] ?? 0;
      const from = proxy.log.length;
      const bytes = await readAll(await via.fetch(b.desc), b.desc.size);
      expect(digestOf(bytes)).toBe(b.desc.digest);
      expect(proxy.counts['response:truncate']).toBe(before + 1);
      const gets = proxy.log.slice(from).filter((e) => e.method === 'GET' && e.url.endsWith(b.desc.digest));
      expect(gets).toHaveLength(2);
      expect(gets[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
      expect(gets[1]!.status).toBe(206);
    }
    await client.close();
  });
});

describe('push and pull through random faults', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let direct: RegistryClient;
  let shared: Descriptor;
  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    direct = new RegistryClient();
    const base = direct.repository(parseReference(`${registry.host}/base/shared`));
    shared = await pushImage(base, { layers: [3000, 700] });
    await base.tag({ mediaType: shared.mediaType, digest: shared.digest, size: shared.size }, '1');
  });
  afterAll(async () => {
    await direct?.close();
    await proxy?.stop();
    await registry?.stop();
  });

  it('completes 50 push+pull rounds with 10% of requests faulted, every byte verified', async () => {
    // The random plan, plus a few faults that cannot miss: a random flip or truncation that
    // lands on a response without a body changes nothing, and which responses the random plan
    // hits depends on how the five lanes interleave.
    const sure = (kind: 'flip' | 'truncate', what: string) => ({ match: (r: { method: string; url: string }) => r.method === 'GET' && r.url.includes(what), kind, phase: 'response' as const, times: 2 });
    proxy.setPlan({
      seed: 4242, rate: 0.1, faults: NETWORK_FAULTS, slowMs: 20, retryAfter: '0',
      rules: [sure('flip', '/blobs/sha256:'), sure('truncate', '/blobs/sha256:'), sure('flip', '/manifests/sha256:')],
    });
    const client = proxied({ attempts: 6 });
    const before = proxy.total();
    const requestsBefore = proxy.log.length;
    // Five lanes of ten rounds at once: the rounds are independent, and the machine has idle time between requests.
    const round = async (i: number) => {
      const repo = client.repository(parseReference(`${proxy.host}/rounds/img`));
      const image = await pushImage(repo, { layers: [512 + i, 2048] });
      const { pushed, pulled } = await pushAndPull(client, proxy.host, `round${i}`, {
        invocation: `${proxy.host}/rounds/img@${image.digest}`,
        shared: `${proxy.host}/base/shared:1`,
      }, `r${i}`);
      expect(pulled.index.digest).toBe(pushed.index.digest);
      expect(Buffer.from(pulled.bundleBytes).equals(Buffer.from(pushed.bundleBytes))).toBe(true);
      expect(pulled.relocationMap).toEqual(pushed.relocationMap);
      // Straight from the registry: the tag names the index pushed, and everything under it is whole.
      const stored = await direct.repository(parseReference(`${registry.host}/rounds/round${i}`)).resolve(`r${i}`);
      expect(stored.digest).toBe(pushed.index.digest);
      expect(await verifyGraph(direct, `${registry.host}/rounds/round${i}`, stored)).toBe(11);
      return i;
    };
    const done: number[] = [];
    await Promise.all(Array.from({ length: 5 }, async (_, lane) => {
      for (let i = lane; i < 50; i += 5) done.push(await round(i));
    }));
    expect(done).toHaveLength(50);
    await client.close();
    const injected = proxy.total() - before;
    const requests = proxy.log.length - requestsBefore;
    // The plan really did fault about one request in ten, of many kinds.
    expect(injected).toBeGreaterThan(requests * 0.05);
    for (const kind of ['503', '429', 'reset', 'truncate', 'flip']) {
      expect(Object.entries(proxy.counts).some(([k, n]) => k.endsWith(`:${kind}`) && n > 0), kind).toBe(true);
    }
  }, 90_000);
});

/** An image whose layers are given, so that several images can share some. */
async function pushLayers(target: import('../../src/content/target.js').Target, layers: Uint8Array[]): Promise<Descriptor> {
  const parts = layers.map((l) => blob(l, 'application/vnd.oci.image.layer.v1.tar+gzip'));
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: parts.map((p) => p.desc.digest) } })), 'application/vnd.oci.image.config.v1+json');
  for (const b of [config, ...parts]) await target.push(b.desc, b.data);
  const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: config.desc, layers: parts.map((p) => p.desc) })), 'application/vnd.oci.image.manifest.v1+json');
  await target.push(manifest.desc, manifest.data);
  return manifest.desc;
}

describe('concurrent pushes and redirects', () => {
  let source: TestRegistry;
  let destination: TestRegistry;
  let proxy: FaultProxy;
  let direct: RegistryClient;
  beforeAll(async () => {
    [source, destination] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy(destination.host);
    direct = new RegistryClient();
  });
  afterAll(async () => {
    await direct?.close();
    await proxy?.stop();
    await Promise.all([source?.stop(), destination?.stop()]);
  });

  it('runs 16 concurrent pushes of different bundles sharing layers, through faults, and pulls all back intact', async () => {
    const src = direct.repository(parseReference(`${source.host}/src/images`));
    const common = randomBytes(200_000);
    const images: Descriptor[] = [];
    for (let i = 0; i < 4; i++) images.push(await pushLayers(src, [common, randomBytes(30_000 + i)]));
    const base = await pushLayers(src, [common, randomBytes(5000)]);
    proxy.setPlan({ seed: 16, rate: 0.05, faults: NETWORK_FAULTS, slowMs: 20, retryAfter: '0' });
    const before = proxy.total();
    const client = proxied({ attempts: 6 });
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => pushAndPull(client, proxy.host, 'shared', {
      invocation: `${source.host}/src/images@${images[i % 4]!.digest}`,
      shared: `${source.host}/src/images@${base.digest}`,
    }, `b${i}`).then((r) => ({ ...r, i }))));
    expect(proxy.total()).toBeGreaterThan(before);
    const digests = new Set<string>();
    for (const { pushed, pulled, i } of results) {
      expect(pulled.index.digest).toBe(pushed.index.digest);
      expect(pulled.relocationMap[`${source.host}/src/images@${images[i % 4]!.digest}`]).toBe(`${proxy.host}/rounds/shared@${images[i % 4]!.digest}`);
      const stored = await direct.repository(parseReference(`${destination.host}/rounds/shared`)).resolve(`b${i}`);
      expect(stored.digest).toBe(pushed.index.digest);
      expect(await verifyGraph(direct, `${destination.host}/rounds/shared`, stored)).toBe(10); // index, config manifest, config; 2 images of config + 2 layers, one layer shared
      digests.add(pushed.index.digest);
    }
    expect(digests.size).toBe(4); // one bundle per distinct invocation image (same name and version)
    await client.close();
  }, 60_000);

  it('uploads a blob once when concurrent copies into one repository share it', async () => {
    const src = direct.repository(parseReference(`${source.host}/src/images`));
    const common = randomBytes(300_000);
    const images = [];
    for (let i = 0; i < 6; i++) images.push(await pushLayers(src, [common, randomBytes(1000 + i)]));
    proxy.setPlan({});
    const client = proxied();
    const dst = client.repository(parseReference(`${proxy.host}/once/shared`));
    const seen = proxy.log.length;
    const stats = await Promise.all(images.map((image) => copyGraph(client.repository(parseReference(`${source.host}/src/images`)), dst, image)));
    const commonDigest = digestOf(common);
    const uploads = proxy.log.slice(seen).filter((e) => e.method === 'PUT' && e.url.includes(`digest=${encodeURIComponent(commonDigest)}`));
    expect(uploads.length).toBe(1);
    // Every copy but the one that uploaded it counts the shared layer as skipped.
    expect(stats.reduce((n, s) => n + s.objectsSkipped, 0)).toBeGreaterThanOrEqual(images.length - 1);
    for (const image of images) expect(await verifyGraph(direct, `${destination.host}/once/shared`, image)).toBe(4);
    await client.close();
  });

  it('never sends Authorization to the blob storage a registry redirects to', async () => {
    const secured = await startRegistry({ htpasswd: { alice: 'redirect-pw' } });
    const basic = `Basic ${Buffer.from('alice:redirect-pw').toString('base64')}`;
    const origin = await startBlobOrigin(secured.host, basic);
    const front = await startFaultProxy(secured.host, { redirectBlobsTo: origin.origin });
    try {
      const credentials = staticCredentials({ [secured.host]: { username: 'alice', password: 'redirect-pw' }, [front.host]: { username: 'alice', password: 'redirect-pw' } });
      const owner = new RegistryClient({ credentials });
      const image = await pushLayers(owner.repository(parseReference(`${secured.host}/app/img`)), [randomBytes(20_000), randomBytes(100)]);
      await owner.close();
      const client = proxied({ credentials });
      const repo = client.repository(parseReference(`${front.host}/app/img`));
      const copied = await copyGraph(repo, new MemoryTarget(), image);
      expect(copied.objectsCopied).toBe(4);
      // The registry (through the proxy) got credentials; the storage it redirected to did not.
      expect(front.log.some((e) => e.authorization && e.url.includes('/manifests/'))).toBe(true);
      expect(front.log.filter((e) => e.status === 307).length).toBe(3);
      expect(origin.requests.length).toBe(3);
      expect(origin.requests.every((r) => r.authorization === undefined)).toBe(true);
      expect(lines.join('\n')).not.toContain('redirect-pw');
      expect(lines.join('\n')).not.toContain(basic.slice(6));

      // The CLI with Docker's config.json and --debug: the bundle pulls through the redirect,
      // and neither the password nor the encoded credential shows anywhere.
      const { bundle } = parseBundle(JSON.stringify({ schemaVersion: 'v1.2.0', name: 'redirected', version: '1.0.0', invocationImages: [{ imageType: 'oci', image: `${front.host}/app/img@${image.digest}` }] }), 'r.json');
      const destination = await openLocation(`${front.host}/app/img:bundle`, client, { create: true });
      await pushBundle(bundle, { destination, resolver: createImageResolver(client, []) });
      const home = await mkdtemp(join(tmpdir(), 'cnab-oci-redirect-'));
      await mkdir(join(home, 'docker'));
      await writeFile(join(home, 'docker', 'config.json'), JSON.stringify({ auths: { [front.host]: { auth: basic.slice(6) } } }));
      const seen = origin.requests.length;
      const res = await runCli(['--debug', 'pull', `${front.host}/app/img:bundle`, '--bundle', join(home, 'b.json'), '--relocation-map', join(home, 'm.json')], { env: { DOCKER_CONFIG: join(home, 'docker') } });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toMatch(/redirect to http:\/\/127\.0\.0\.1:\d+\/v2\/app\/img\/blobs\/sha256:/);
      expect(origin.requests.length).toBeGreaterThan(seen);
      expect(origin.requests.every((r) => r.authorization === undefined)).toBe(true);
      for (const secret of ['redirect-pw', basic.slice(6)]) expect(res.stdout + res.stderr).not.toContain(secret);
      await rm(home, { recursive: true, force: true });
      await client.close();
    } finally {
      await front.stop();
      await origin.stop();
      await secured.stop();
    }
  });
});

/** One line on stderr, `cnab-oci: error: ...`, and no stack trace. */
function oneLineError(stderr: string): string {
  const errors = stderr.split('\n').filter((l) => l.startsWith('cnab-oci: error: '));
  expect(errors, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return errors[0]!;
}

describe('tampered content through the CLI', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let bundlePath: string;
  let image: Descriptor;
  let layers: Descriptor[];
  const env = () => ({ DOCKER_CONFIG: join(work, 'docker') });
  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy(a.host);
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-faults-'));
    const client = new RegistryClient();
    const repo = client.repository(parseReference(`${a.host}/src/app`));
    // A small layer (read whole) and one over 4 MiB (streamed straight into the destination).
    image = await pushLayers(repo, [randomBytes(2048), randomBytes(5 * 1024 * 1024)]);
    await repo.tag(image, '1');
    layers = (JSON.parse(Buffer.from(await readAll(await repo.fetch(image))).toString()) as { layers: Descriptor[] }).layers;
    await client.close();
    bundlePath = join(work, 'bundle.json');
    await writeFile(bundlePath, JSON.stringify({ schemaVersion: 'v1.2.0', name: 'tamper', version: '1.0.0', invocationImages: [{ imageType: 'oci', image: `${proxy.host}/src/app:1` }] }));
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  const targets: Array<[string, () => string]> = [
    ['a manifest', () => '/manifests/'],
    ['a small layer (read whole)', () => `/blobs/${layers[0]!.digest}`],
    ['a 5 MiB layer (streamed into the destination)', () => `/blobs/${layers[1]!.digest}`],
  ];
  for (const [n, [what, target]] of targets.entries()) {
    it(`push refuses ${what} whose bytes were changed on the way, and publishes nothing`, async () => {
      const path = target();
      proxy.setPlan({ rules: [{ match: (r) => r.method === 'GET' && r.url.includes(path), kind: 'flip', phase: 'response' }] });
      const flips = proxy.counts['response:flip'] ?? 0;
      const out = join(work, `fixed-${what.length}.json`);
      const map = join(work, `map-${what.length}.json`);
      const res = await runCli(['--retries', '1', 'push', bundlePath, '--target', `${b.host}/acme/tamper${n}:1`, '--bundle', out, '--relocation-map', map], { env: env() });
      expect(res.code, res.stderr).toBe(1);
      expect(proxy.counts['response:flip']).toBeGreaterThan(flips);
      const line = oneLineError(res.stderr);
      expect(line).toMatch(new RegExp(`digest mismatch for ${proxy.host.replace(/\./g, '\\.')}/src/app@sha256:[0-9a-f]{64}: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}`));
      expect(existsSync(out)).toBe(false);
      expect(existsSync(map)).toBe(false);
      const dst = new RegistryClient();
      const repo = dst.repository(parseReference(`${b.host}/acme/tamper${n}`));
      await expect(repo.resolve('1')).rejects.toThrow(/not found/);
      expect(await repo.exists(image)).toBe(false);
      // The damaged blob was not committed (for the big one: its streamed upload was cut short).
      for (const layer of layers.filter((l) => path.endsWith(l.digest))) expect(await repo.exists(layer), layer.digest).toBe(false);
      await dst.close();
    });
  }

  it('a failed push into an existing OCI layout leaves it exactly as it was', async () => {
    proxy.setPlan({});
    const layout = join(work, 'layout');
    const first = await runCli(['push', bundlePath, '--target', `oci:${layout}:1`], { env: env() });
    expect(first.code, first.stderr).toBe(0);
    const snapshot = async () => {
      const files: Record<string, string> = {};
      const walk = async (dir: string): Promise<void> => {
        for (const e of await readdir(dir, { withFileTypes: true })) {
          const p = join(dir, e.name);
          if (e.isDirectory()) await walk(p);
          else files[p.slice(layout.length)] = digestOf(await readFile(p));
        }
      };
      await walk(layout);
      return files;
    };
    const before = await snapshot();
    expect(Object.keys(before)).toContain('/index.json');
    // Same bundle under a new tag, but every layer read from the source is damaged.
    proxy.setPlan({ rules: [{ match: (r) => r.method === 'GET' && r.url.includes('/blobs/sha256:'), kind: 'flip', phase: 'response' }] });
    await writeFile(join(work, 'bundle2.json'), (await readFile(bundlePath, 'utf8')).replace('"1.0.0"', '"2.0.0"'));
    // A new image too, so that some blob is really needed from the source.
    const client = new RegistryClient();
    const repo = client.repository(parseReference(`${a.host}/src/app2`));
    const other = await pushLayers(repo, [randomBytes(3000)]);
    await repo.tag(other, '1');
    await client.close();
    await writeFile(join(work, 'bundle2.json'), JSON.stringify({ ...JSON.parse(await readFile(join(work, 'bundle2.json'), 'utf8')), images: { extra: { imageType: 'oci', image: `${proxy.host}/src/app2:1` } } }));
    const failed = await runCli(['--retries', '1', 'push', join(work, 'bundle2.json'), '--target', `oci:${layout}:2`], { env: env() });
    expect(failed.code, failed.stderr).toBe(1);
    expect(oneLineError(failed.stderr)).toMatch(/digest mismatch/);
    expect(await snapshot()).toEqual(before); // no new tag, no partial or temporary file
  });

  it('pull refuses a tampered index or bundle config and writes no file', async () => {
    proxy.setPlan({});
    const pushed = await runCli(['push', bundlePath, '--target', `${proxy.host}/acme/tamper:1`], { env: env() });
    expect(pushed.code, pushed.stderr).toBe(0);
    for (const path of ['/manifests/sha256:', '/blobs/sha256:']) {
      proxy.setPlan({ rules: [{ match: (r) => r.method === 'GET' && r.url.includes(path), kind: 'flip', phase: 'response' }] });
      const flips = proxy.counts['response:flip'] ?? 0;
      const bundle = join(work, 'pulled.json');
      const map = join(work, 'pulled-map.json');
      const res = await runCli(['--retries', '1', 'pull', `${proxy.host}/acme/tamper:1`, '--bundle', bundle, '--relocation-map', map], { env: env() });
      expect(res.code, res.stderr).toBe(1);
      expect(proxy.counts['response:flip']).toBeGreaterThan(flips);
      expect(oneLineError(res.stderr)).toMatch(/digest mismatch for .*acme\/tamper@sha256:[0-9a-f]{64}: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/);
      expect(existsSync(bundle)).toBe(false);
      expect(existsSync(map)).toBe(false);
    }
  });

  it('--retries 0 fails fast on a 503; the default retries it and succeeds', async () => {
    const plan = () => proxy.setPlan({ rules: [{ match: (r) => r.url.includes('/manifests/'), kind: '503', phase: 'request', times: 1 }] });
    plan();
    const from = proxy.log.length;
    const none = await runCli(['--retries', '0', 'inspect', `${proxy.host}/acme/tamper:1`], { env: env() });
    expect(none.code, none.stderr).toBe(1);
    expect(oneLineError(none.stderr)).toMatch(/acme\/tamper:1: HTTP 503/);
    expect(proxy.log.slice(from).filter((e) => e.url.includes('/manifests/'))).toHaveLength(1);
    plan();
    const retried = await runCli(['inspect', `${proxy.host}/acme/tamper:1`], { env: env() });
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toContain('tamper 1.0.0');
    const bad = await runCli(['--retries', 'many', 'inspect', `${proxy.host}/acme/tamper:1`], { env: env() });
    expect(bad.code).toBe(2);
    expect(oneLineError(bad.stderr)).toMatch(/--retries/);
  });
});
