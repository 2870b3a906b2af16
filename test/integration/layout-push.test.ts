import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const run = promisify(execFile);
const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');

/** The embedded default: bundles pushed into and pulled from OCI layout directories, no server. */
describe('push and pull with OCI layouts', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-layout-'));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes the fixture bundle into a layout that umoci and skopeo read, and pulls it back', async () => {
    const layout = join(work, 'out');
    const push = await runCli(['push', join(fixtures, 'bundle.json'), '--target', `oci:${layout}:hello`, '--images-from', `oci:${join(fixtures, 'images')}`, '--bundle', join(work, 'fixed.json')]);
    expect(push.code, push.stderr).toBe(0);
    const digest = push.stdout.trim();
    const pull = await runCli(['pull', `oci:${layout}:hello`, '--bundle', join(work, 'pulled.json'), '--relocation-map', join(work, 'map.json')]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(digest);
    expect(await readFile(join(work, 'pulled.json'), 'utf8')).toBe(await readFile(join(work, 'fixed.json'), 'utf8'));
    const map = JSON.parse(await readFile(join(work, 'map.json'), 'utf8'));
    expect(Object.keys(map).sort()).toEqual(['example.com/cnab-oci/hello-installer:0.1.0', 'example.com/cnab-oci/web:1.0', 'example.com/cnab-oci/worker:1.0']);
    // An independent reader lists the bundle tag and can read the index it points at.
    const { stdout: ls } = await run('umoci', ['ls', '--layout', layout]);
    expect(ls.split('\n')).toContain('hello');
    const { stdout: raw } = await run('skopeo', ['inspect', '--raw', `oci:${layout}:hello`]);
    expect(JSON.parse(raw).manifests).toHaveLength(4);
  });

  it('pushes into an oci-archive that skopeo reads, pulls and inspects it back, and leaves no temporary layout', async () => {
    const tmp = await mkdtemp(join(work, 'tmp-'));
    const env = { TMPDIR: tmp };
    const archive = join(work, 'hello.tar');
    const push = await runCli(['push', join(fixtures, 'bundle.json'), '--target', `oci-archive:${archive}:hello`, '--images-from', `oci:${join(fixtures, 'images')}`], { env });
    expect(push.code, push.stderr).toBe(0);
    const { stdout: raw } = await run('skopeo', ['inspect', '--raw', `oci-archive:${archive}:hello`]);
    expect(JSON.parse(raw).manifests).toHaveLength(4);
    const pull = await runCli(['pull', `oci-archive:${archive}:hello`, '--bundle', join(work, 'from-archive.json'), '--relocation-map', join(work, 'from-archive-map.json')], { env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(push.stdout.trim());
    const inspect = await runCli(['inspect', `oci-archive:${archive}:hello`], { env });
    expect(inspect.stdout).toContain(push.stdout.trim());
    // An archive is not changed in place: signing it is refused, and the file stays as it was.
    const before = await readFile(archive);
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    await writeFile(join(work, 'archive.key'), key);
    const sign = await runCli(['sign', `oci-archive:${archive}:hello`, '--key', join(work, 'archive.key')], { env });
    expect(sign.code).toBe(2);
    expect(sign.stderr).toMatch(/not changed in place/);
    expect((await readFile(archive)).equals(before)).toBe(true);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('finds an image pinned by digest in --images-from', async () => {
    const bundle = JSON.parse(await readFile(join(fixtures, 'bundle.json'), 'utf8'));
    const index = JSON.parse(await readFile(join(fixtures, 'images', 'index.json'), 'utf8'));
    const worker = index.manifests.find((m: { annotations: Record<string, string> }) => m.annotations["org.opencontainers.image.ref.name"]?.includes('worker'));
    bundle.images.worker.image = `registry.invalid/elsewhere/worker@${worker.digest}`;
    const path = join(work, 'pinned.json');
    await writeFile(path, JSON.stringify(bundle));
    const res = await runCli(['push', path, '--target', `oci:${join(work, 'pinned')}:x`, '--images-from', `oci:${join(fixtures, 'images')}`, '--relocation-map', join(work, 'pinned-map.json')]);
    expect(res.code, res.stderr).toBe(0);
    const map = JSON.parse(await readFile(join(work, 'pinned-map.json'), 'utf8'));
    expect(map[`registry.invalid/elsewhere/worker@${worker.digest}`]).toMatch(new RegExp(`@${worker.digest}$`));
  });
});
