import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Descriptor } from '../../src/oci/schemas.js';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { runCli } from '../helpers/cli.js';
import { pushImage, pushMultiArch } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const skopeo = '/usr/bin/skopeo';

/**
 * The bridge end to end through the CLI, as a user runs it: images live in a "source"
 * repository, the bundle is pushed to the same registry (mounts) and to another one (copies),
 * then pulled back and checked with skopeo, an independent reader.
 */
describe('push and pull a bundle through a real registry', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let work: string;
  let bundlePath: string;
  const images: Record<string, Descriptor> = {};
  const env = (): Record<string, string> => ({ DOCKER_CONFIG: join(work, 'docker') });

  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-bridge-'));
    const client = new RegistryClient();
    const installer = client.repository(parseReference(`${a.host}/src/installer`));
    const tools = client.repository(parseReference(`${a.host}/src/tools`));
    const web = client.repository(parseReference(`${a.host}/src/web`));
    const db = client.repository(parseReference(`${a.host}/src/db`));
    const inst = await pushImage(installer, { format: 'docker', layers: [2048, 300_000] });
    await installer.tag(inst, '1.0');
    const tool = await pushImage(tools, { layers: [512] });
    const webIndex = await pushMultiArch(web);
    await web.tag(webIndex, '2.0');
    const dbImage = await pushImage(db, { layers: [4096] });
    images.installer = inst;
    images.tools = tool;
    images.web = webIndex;
    images.db = dbImage;
    await client.close();
    const bundle = {
      schemaVersion: 'v1.2.0',
      name: 'shop',
      version: '1.2.3',
      description: 'a bundle with two invocation images, a multi-arch component and one by digest',
      invocationImages: [
        { imageType: 'docker', image: `${a.host}/src/installer:1.0` },
        { imageType: 'oci', image: `${a.host}/src/tools@${tool.digest}` },
      ],
      images: {
        web: { imageType: 'oci', image: `${a.host}/src/web:2.0`, description: 'frontend' },
        db: { imageType: 'oci', image: `${a.host}/src/db@${dbImage.digest}`, contentDigest: dbImage.digest },
      },
    };
    bundlePath = join(work, 'bundle.json');
    await writeFile(bundlePath, JSON.stringify(bundle, null, 2));
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes to the same registry by mounting blobs, and pulls back the bundle and relocation map', async () => {
    const target = `${a.host}/acme/shop:1.2.3`;
    const push = await runCli(['--json', 'push', bundlePath, '--target', target, '--bundle', join(work, 'fixed.json')], { env: env() });
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toMatch(/mounted/);
    const pushed = JSON.parse(push.stdout);
    expect(pushed.stats.mounts).toBeGreaterThan(0);
    expect(pushed.stats.bytesCopied).toBeLessThan(10_000); // layers mounted, only manifests and the bundle travel

    const pull = await runCli(['pull', target, '--bundle', join(work, 'pulled.json'), '--relocation-map', join(work, 'map.json')], { env: env() });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(pushed.digest);
    const pulled = JSON.parse(await readFile(join(work, 'pulled.json'), 'utf8'));
    const fixed = JSON.parse(await readFile(join(work, 'fixed.json'), 'utf8'));
    expect(pulled).toEqual(fixed);
    expect(pulled.invocationImages[0].contentDigest).toBe(images.installer!.digest);
    expect(pulled.images.web.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const map = JSON.parse(await readFile(join(work, 'map.json'), 'utf8'));
    expect(map).toEqual({
      [`${a.host}/src/installer:1.0`]: `${a.host}/acme/shop@${images.installer!.digest}`,
      [`${a.host}/src/tools@${images.tools!.digest}`]: `${a.host}/acme/shop@${images.tools!.digest}`,
      [`${a.host}/src/web:2.0`]: `${a.host}/acme/shop@${images.web!.digest}`,
      [`${a.host}/src/db@${images.db!.digest}`]: `${a.host}/acme/shop@${images.db!.digest}`,
    });

    // What push sent is exactly what the offline converter computes from the same bundle and map.
    const out = join(work, 'converted');
    const convert = await runCli(['convert', join(work, 'fixed.json'), '--target', target, '--relocation-map', join(work, 'map.json'), '--output', out]);
    expect(convert.code, convert.stderr).toBe(0);
    expect(convert.stdout.trim()).toBe(pushed.digest);
  });

  it('writes an index that skopeo reads, and images skopeo can copy by their relocated digest', async () => {
    const target = `${a.host}/acme/shop:1.2.3`;
    const { stdout } = await run(skopeo, ['inspect', '--tls-verify=false', '--raw', `docker://${target}`]);
    const index = JSON.parse(stdout);
    // cnab-to-oci leaves mediaType out of the index body (the registry serves it as Content-Type).
    expect(index.schemaVersion).toBe(2);
    expect(index.annotations['io.cnab.runtime_version']).toBeDefined();
    const types = index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['io.cnab.manifest.type']);
    expect(types).toEqual(['config', 'invocation', 'invocation', 'component', 'component']);
    // Components sorted by name: db before web.
    expect(index.manifests[3].annotations['io.cnab.component.name']).toBe('db');
    expect(index.manifests[4].annotations['io.cnab.component.name']).toBe('web');
    // skopeo verifies every blob of the multi-arch component on the way out.
    const dest = join(work, 'skopeo-web');
    await run(skopeo, ['copy', '--all', '--src-tls-verify=false', `docker://${a.host}/acme/shop@${images.web!.digest}`, `oci:${dest}:web`]);
    const { stdout: raw } = await run(skopeo, ['inspect', '--raw', `oci:${dest}:web`]);
    expect(JSON.parse(raw).manifests).toHaveLength(2);
  });

  it('pushes to another registry by copying, and a second push moves nothing', async () => {
    const target = `${b.host}/mirror/shop:1.2.3`;
    const first = await runCli(['--json', 'push', bundlePath, '--target', target], { env: env() });
    expect(first.code, first.stderr).toBe(0);
    const r1 = JSON.parse(first.stdout);
    expect(r1.stats.mounts).toBe(0);
    expect(r1.stats.bytesCopied).toBeGreaterThan(300_000);
    const second = await runCli(['--json', 'push', bundlePath, '--target', target], { env: env() });
    expect(second.code, second.stderr).toBe(0);
    const r2 = JSON.parse(second.stdout);
    expect(r2.digest).toBe(r1.digest);
    expect(r2.stats.bytesCopied).toBe(0);
    // Same bundle, same digests, whichever registry it lands in.
    const inspectA = await runCli(['--json', 'inspect', `${a.host}/acme/shop:1.2.3`]);
    expect(JSON.parse(inspectA.stdout).digest).toBe(r1.digest);
  });

  it('refuses a bundle whose contentDigest differs from the registry, naming the image and both values', async () => {
    const bundle = JSON.parse(await readFile(bundlePath, 'utf8'));
    const wrong = `sha256:${'0'.repeat(64)}`;
    bundle.images.db.contentDigest = wrong;
    bundle.images.db.image = `${a.host}/src/db:latest`;
    const client = new RegistryClient();
    await client.repository(parseReference(`${a.host}/src/db`)).tag(images.db!, 'latest');
    await client.close();
    const path = join(work, 'wrong.json');
    await writeFile(path, JSON.stringify(bundle));
    const res = await runCli(['push', path, '--target', `${a.host}/acme/wrong:1`], { env: env() });
    expect(res.code).toBe(2); // the bundle is wrong, not the registry
    expect(res.stderr).toContain('images.db');
    expect(res.stderr).toContain(wrong);
    expect(res.stderr).toContain(images.db!.digest);
    expect(res.stderr.trim().split('\n').filter((l) => l.startsWith('cnab-oci: error'))).toHaveLength(1);
    // Nothing was tagged.
    const inspect = await runCli(['inspect', `${a.host}/acme/wrong:1`]);
    expect(inspect.code).toBe(1);
    expect(inspect.stderr).toMatch(/not found/);

    const fixedRun = await runCli(['--json', 'push', path, '--target', `${a.host}/acme/wrong:1`, '--auto-update-bundle'], { env: env() });
    expect(fixedRun.code, fixedRun.stderr).toBe(0);
    expect(JSON.parse(fixedRun.stdout).changes).toContainEqual(expect.objectContaining({ field: 'contentDigest', from: wrong, to: images.db!.digest }));
  });

  it('names a missing image and exits non-zero without tagging', async () => {
    const bundle = JSON.parse(await readFile(bundlePath, 'utf8'));
    bundle.images.web.image = `${a.host}/src/web:no-such-tag`;
    const path = join(work, 'missing.json');
    await writeFile(path, JSON.stringify(bundle));
    const res = await runCli(['push', path, '--target', `${a.host}/acme/missing:1`], { env: env() });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${a.host}/src/web:no-such-tag`);
    expect(res.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('reports a typo in bundle.json as one line naming the file', async () => {
    const path = join(work, 'typo.json');
    await writeFile(path, '{"schemaVersion": "v1.2.0", "name": "x",, }');
    const res = await runCli(['push', path, '--target', `${a.host}/acme/typo:1`], { env: env() });
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toContain(path);
  });
});
