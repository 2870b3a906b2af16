import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAll } from '../../src/content/read.js';
import { digestOf } from '../../src/oci/digest.js';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { blob } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const lines: string[] = [];
/** A client through the proxy with fast retries (the policy is the default one, only the delays shrink). */
function proxied(options: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({ retryDelay: 5, debug: (l) => lines.push(l), ...options });
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
