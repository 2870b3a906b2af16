import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAll } from '../../src/content/read.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../helpers/fault-proxy.js';
import { blob } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/**
 * `attempts` (`--retries N` + 1) bounds the requests of one operation of a Repository, however
 * its retries nest (the transport's, re-reads, resumes, upload restarts, chunk retries): a
 * registry that fails every time sees at most `attempts` tries of the request that fails.
 */
describe('one retry budget per operation', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let direct: RegistryClient;
  const clients: RegistryClient[] = [];
  const proxied = (options: RegistryClientOptions): RegistryClient => {
    const client = new RegistryClient({ retryDelay: 1, ...options });
    clients.push(client);
    return client;
  };
  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    direct = new RegistryClient();
  });
  afterAll(async () => {
    await Promise.all([direct, ...clients].map((c) => c?.close()));
    await proxy?.stop();
    await registry?.stop();
  });

  /** A blob pushed straight to the registry (no faults), and a matcher for the GETs of it. */
  const stored = async (name: string, size: number) => {
    const b = blob(randomBytes(size), MediaType.OciLayerGzip);
    await direct.repository(parseReference(`${registry.host}/${name}`)).push(b.desc, b.data);
    return { ...b, get: (r: ProxiedRequest) => r.method === 'GET' && r.url.includes(`/blobs/${b.desc.digest}`) };
  };
  const seen = (from: number, method: string, part: string) => proxy.log.slice(from).filter((e) => e.method === method && e.url.includes(part)).length;

  it('a small blob answered 503 every time is asked for at most `attempts` times', async () => {
    const b = await stored('budget/small', 20_000);
    proxy.setPlan({ rules: [{ match: b.get, kind: '503', phase: 'request' }] });
    const from = proxy.log.length;
    const repo = proxied({ attempts: 3 }).repository(parseReference(`${proxy.host}/budget/small`));
    await expect(repo.fetch(b.desc).then(readAll)).rejects.toThrow(/HTTP 503/);
    expect(seen(from, 'GET', b.desc.digest)).toBe(3);
  });

  it('a small blob whose body is cut short every time is asked for at most `attempts` times', async () => {
    const b = await stored('budget/cut', 20_000);
    proxy.setPlan({ rules: [{ match: b.get, kind: 'truncate', phase: 'response' }] });
    const from = proxy.log.length;
    const repo = proxied({ attempts: 3 }).repository(parseReference(`${proxy.host}/budget/cut`));
    await expect(repo.fetch(b.desc).then(readAll)).rejects.toThrow(/download failed at byte/);
    expect(seen(from, 'GET', b.desc.digest)).toBe(3);
  });

  it('a resumable download spends its resumes and the transport retries from one budget', async () => {
    const b = await stored('budget/large', 5 * 1024 * 1024 + 7);
    // Each try of the blob is either cut short (a resume follows) or refused with 503 (the
    // transport retries): the two kinds of retry alternate.
    const faulty = (limit: number) => {
      let n = 0;
      let k = 0; // the number of this GET of the blob, set by the first rule (always asked first)
      return [
        { match: (r: ProxiedRequest) => b.get(r) && (k = n++) < limit && k % 2 === 0, kind: 'truncate' as const, phase: 'response' as const },
        { match: (r: ProxiedRequest) => b.get(r) && k < limit && k % 2 === 1, kind: '503' as const, phase: 'request' as const },
      ];
    };
    const repo = proxied({ attempts: 4 }).repository(parseReference(`${proxy.host}/budget/large`));

    // Three faults, three retries: within `--retries 3`, the download completes and verifies.
    proxy.setPlan({ rules: faulty(3) });
    let from = proxy.log.length;
    const bytes = await readAll(await repo.fetch(b.desc), b.desc.size);
    expect(digestOf(bytes)).toBe(b.desc.digest);
    expect(seen(from, 'GET', b.desc.digest)).toBe(4);
    expect(proxy.log.slice(from).filter((e) => e.range).length).toBeGreaterThan(0); // it did resume

    // Faults without end: four tries in all, whatever their mix, then the error.
    proxy.setPlan({ rules: faulty(Infinity) });
    from = proxy.log.length;
    await expect(repo.fetch(b.desc).then((s) => readAll(s, b.desc.size))).rejects.toThrow(/download failed at byte|HTTP 503/);
    expect(seen(from, 'GET', b.desc.digest)).toBe(4);
  });

  it('an upload refused with 503 at every PUT sends at most `attempts` PUTs', async () => {
    const b = blob(randomBytes(30_000), MediaType.OciLayerGzip);
    proxy.setPlan({ rules: [{ match: (r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'), kind: '503', phase: 'request' }] });
    const from = proxy.log.length;
    const repo = proxied({ attempts: 3 }).repository(parseReference(`${proxy.host}/budget/put`));
    await expect(repo.push(b.desc, b.data)).rejects.toThrow(/HTTP 503/);
    expect(seen(from, 'PUT', '/blobs/uploads/')).toBe(3);
    expect(await direct.repository(parseReference(`${registry.host}/budget/put`)).exists(b.desc)).toBe(false);
  });

  it('a chunked upload whose every PATCH fails sends at most `attempts` PATCHes, status queries between them', async () => {
    const b = blob(randomBytes(100_000), MediaType.OciLayerGzip);
    proxy.setPlan({ rules: [{ match: (r) => r.method === 'PATCH', kind: '503', phase: 'request' }] });
    const from = proxy.log.length;
    const repo = proxied({ attempts: 3, chunkThreshold: 50_000, chunkSize: 40_000 }).repository(parseReference(`${proxy.host}/budget/chunks`));
    await expect(repo.push(b.desc, b.data)).rejects.toThrow(/HTTP 503/);
    expect(seen(from, 'PATCH', '/blobs/uploads/')).toBe(3);
    expect(seen(from, 'GET', '/blobs/uploads/')).toBe(2); // one status query before each retry
  });

  it('a manifest GET answered 503 every time is sent at most `attempts` times', async () => {
    proxy.setPlan({ rules: [{ match: (r) => r.url.includes('/manifests/'), kind: '503', phase: 'request' }] });
    const from = proxy.log.length;
    const repo = proxied({ attempts: 2 }).repository(parseReference(`${proxy.host}/budget/small`));
    await expect(repo.resolve('latest')).rejects.toThrow(/HTTP 503/);
    expect(seen(from, 'GET', '/manifests/')).toBe(2);
  });

  it('a blob copy between registries spends one budget for both sides and its new starts', async () => {
    // Every PUT refused: the upload retries it, and the copy starts the whole transfer again
    // from a fresh read of the source; all of it from the one budget of the blob's copy.
    const b = await stored('budget/copy-src', 30_000);
    proxy.setPlan({ rules: [{ match: (r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'), kind: '503', phase: 'request' }] });
    const from = proxy.log.length;
    const client = proxied({ attempts: 3 });
    const image = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: b.desc, layers: [] })), MediaType.OciManifest);
    const source = direct.repository(parseReference(`${registry.host}/budget/copy-src`));
    await source.push(image.desc, image.data);
    const { copyGraph, CopySession } = await import('../../src/transfer/copy.js');
    const copy = copyGraph(source, client.repository(parseReference(`${proxy.host}/budget/copy-dst`)), image.desc, { session: new CopySession(2, 3) });
    await expect(copy).rejects.toThrow(/HTTP 503/);
    // Three tries of the blob's PUT in all (before: three new starts of three tries each, nine).
    expect(seen(from, 'PUT', '/blobs/uploads/')).toBe(3);
  });

  it('a cancelled client aborts its request in flight at once and begins no retry', async () => {
    const b = await stored('budget/abort', 20_000);
    // Every answer for the blob is held back for 5 s: the abort must not wait for it.
    proxy.setPlan({ rules: [{ match: b.get, kind: 'slow', phase: 'response' }], slowMs: 5000 });
    const controller = new AbortController();
    const repo = proxied({ attempts: 4, signal: controller.signal }).repository(parseReference(`${proxy.host}/budget/abort`));
    const from = proxy.log.length;
    const started = Date.now();
    const read = repo.fetch(b.desc).then(readAll);
    setTimeout(() => controller.abort(), 300);
    const { AbortedError } = await import('../../src/oci/errors.js');
    await expect(read).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(seen(from, 'GET', b.desc.digest)).toBe(1);
  });
});
