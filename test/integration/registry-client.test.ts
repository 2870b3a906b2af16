import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAll } from '../../src/content/read.js';
import { digestOf } from '../../src/oci/digest.js';
import { DigestMismatchError, NotFoundError } from '../../src/oci/errors.js';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { staticCredentials } from '../../src/registry/credentials.js';
import { AuthError } from '../../src/registry/errors.js';
import { copyGraph } from '../../src/transfer/copy.js';
import { blob, pushImage, pushMultiArch } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('registry client against registry:2', () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient();
  });
  afterAll(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('pushes, resolves, fetches and tags an image (falling back to HTTP on loopback)', async () => {
    const repo = client.repository(parseReference(`${registry.host}/test/image`));
    const manifest = await pushImage(repo, { layers: [10, 70_000] });
    const { platform: _p, ...plain } = manifest;
    await repo.tag(plain, 'v1');
    const resolved = await repo.resolve('v1');
    expect(resolved).toEqual(plain);
    const bytes = await readAll(await repo.fetch(resolved));
    expect(digestOf(bytes)).toBe(manifest.digest);
    expect(await repo.exists(plain)).toBe(true);
    expect(await repo.exists({ ...plain, digest: digestOf('nope') })).toBe(false);
  });

  it('streams a blob larger than memory buffers and verifies it on the way back', async () => {
    const repo = client.repository(parseReference(`${registry.host}/test/big`));
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const chunks = 8;
    const all = Buffer.concat(Array.from({ length: chunks }, () => chunk));
    const desc = { mediaType: 'application/octet-stream', digest: digestOf(all), size: all.length };
    await repo.push(desc, Readable.from((function* () {
      for (let i = 0; i < chunks; i++) yield chunk;
    })()));
    let total = 0;
    for await (const c of await repo.fetch(desc)) total += (c as Buffer).length;
    expect(total).toBe(all.length);
  });

  it('refuses a blob whose bytes do not match its digest and leaves nothing behind', async () => {
    const repo = client.repository(parseReference(`${registry.host}/test/bad`));
    const good = blob(Buffer.from('good bytes'), 'application/octet-stream');
    await expect(repo.push(good.desc, Readable.from([Buffer.from('evil bytes')]))).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await repo.exists(good.desc)).toBe(false);
  });

  it('reports a missing tag as not found, naming the reference', async () => {
    const repo = client.repository(parseReference(`${registry.host}/test/image`));
    await expect(repo.resolve('no-such-tag')).rejects.toThrow(NotFoundError);
    await expect(repo.resolve('no-such-tag')).rejects.toThrow(`${registry.host}/test/image:no-such-tag`);
  });

  it('copies a multi-arch image between repositories by cross-repository mount', async () => {
    const src = client.repository(parseReference(`${registry.host}/test/multi`));
    const dst = client.repository(parseReference(`${registry.host}/test/multi-copy`));
    const index = await pushMultiArch(src);
    const stats = await copyGraph(src, dst, index);
    // 2 configs + 2 layers mount; 2 manifests + 1 index are pushed.
    expect(stats.mounts).toBe(4);
    expect(await dst.exists(index)).toBe(true);
    const again = await copyGraph(src, dst, index);
    expect(again.objectsSkipped).toBeGreaterThan(0);
    expect(again.mounts).toBe(0);
  });
});

describe('registry client with htpasswd basic auth', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: { alice: 's3cret-pw' } });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('authenticates with the right password', async () => {
    const client = new RegistryClient({ credentials: staticCredentials({ [registry.host]: { username: 'alice', password: 's3cret-pw' } }) });
    const repo = client.repository(parseReference(`${registry.host}/auth/image`));
    const desc = await pushImage(repo);
    expect(await repo.exists(desc)).toBe(true);
    await client.close();
  });

  it('fails with an AuthError that names the registry and never the password', async () => {
    const client = new RegistryClient({ credentials: staticCredentials({ [registry.host]: { username: 'alice', password: 'wrong-pw' } }) });
    const repo = client.repository(parseReference(`${registry.host}/auth/image`));
    const err = await repo.resolve('latest').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(String((err as Error).message)).toContain(registry.host);
    expect(String((err as Error).message)).not.toContain('wrong-pw');
    await client.close();
  });

  it('fails without credentials', async () => {
    const client = new RegistryClient();
    await expect(client.repository(parseReference(`${registry.host}/auth/image`)).resolve('latest')).rejects.toBeInstanceOf(AuthError);
    await client.close();
  });
});
