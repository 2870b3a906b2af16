import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertBundle, parseBundle, type ConfigMediaTypeChoice, type IndexMediaTypeChoice } from '../../src/cnab/index.js';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { runCli } from '../helpers/cli.js';
import { pushImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const SPEC = join(import.meta.dirname, '..', '..', 'schemas', 'cnab-to-oci', 'helloworld-complete.bundle.json');

/**
 * Bundles as cnab-to-oci and Porter leave them in registries, including the fallback shapes
 * (OCI or Docker config media type, Docker manifest list), pushed here object by object
 * without our push command, then read back with `cnab-oci pull`.
 */
describe('pull reads what cnab-to-oci and Porter push', () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  let work: string;
  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient();
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-compat-'));
  });
  afterAll(async () => {
    await client?.close();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function publish(repoName: string, configMediaType: ConfigMediaTypeChoice, indexMediaType: IndexMediaTypeChoice) {
    const ref = parseReference(`${registry.host}/${repoName}:0.1.1`);
    const repo = client.repository(ref);
    const invocation = await pushImage(repo, { format: 'docker' });
    const { bundle } = parseBundle(await readFile(SPEC), 'helloworld-complete.bundle.json');
    bundle.invocationImages[0]!.contentDigest = invocation.digest;
    const converted = convertBundle(bundle, ref, { 'cnab/helloworld:0.1.1': `${ref.name}@${invocation.digest}` }, { configMediaType, indexMediaType });
    await repo.push(converted.config.descriptor, converted.config.bytes);
    await repo.push(converted.configManifest.descriptor, converted.configManifest.bytes);
    await repo.push(converted.index.descriptor, converted.index.bytes);
    await repo.tag(converted.index.descriptor, '0.1.1');
    return { ref, converted, invocation };
  }

  for (const [config, index] of [['cnab', 'oci'], ['oci', 'oci'], ['docker', 'docker']] as const) {
    it(`reads a ${config} config under an ${index === 'oci' ? 'OCI index' : 'Docker manifest list'}`, async () => {
      const { ref, converted, invocation } = await publish(`compat/${config}-${index}`, config, index);
      const out = join(work, `${config}-${index}`);
      const res = await runCli(['pull', ref.toString(), '--bundle', `${out}.json`, '--relocation-map', `${out}.map.json`]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout.trim()).toBe(converted.index.descriptor.digest);
      expect(Buffer.compare(await readFile(`${out}.json`), Buffer.from(converted.config.bytes))).toBe(0);
      expect(JSON.parse(await readFile(`${out}.map.json`, 'utf8'))).toEqual({ 'cnab/helloworld:0.1.1': `${ref.name}@${invocation.digest}` });
    });
  }

  it('refuses a bundle whose stored bytes no longer match their digest, and writes nothing', async () => {
    const { ref, converted } = await publish('compat/tampered', 'cnab', 'oci');
    // Tamper with the config blob where registry:2 keeps it; the registry serves it as is.
    const hex = converted.config.descriptor.digest.slice('sha256:'.length);
    const data = join(registry.storageDir!, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const original = await readFile(data);
    const flipped = Buffer.from(original);
    flipped[10] = flipped[10]! ^ 0x01;
    await writeFile(data, flipped);
    const out = join(work, 'tampered.json');
    const res = await runCli(['pull', ref.toString(), '--bundle', out, '--relocation-map', `${out}.map`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('digest mismatch');
    expect(res.stderr).toContain(converted.config.descriptor.digest);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.map`)).toBe(false);
  });
});
