import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import * as tar from 'tar-stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../../src/content/layout.js';
import { parseReference } from '../../src/oci/reference.js';
import type { Descriptor } from '../../src/oci/schemas.js';
import { RegistryClient } from '../../src/registry/client.js';
import { copyGraph } from '../../src/transfer/copy.js';
import { runCli } from '../helpers/cli.js';
import { pushImage, pushMultiArch } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const skopeo = (...args: string[]) => run('skopeo', args, { maxBuffer: 16 << 20 });

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Every entry header of a tar.gz, in order. */
async function listEntries(file: string): Promise<tar.Header[]> {
  const extract = tar.extract();
  const done = pipeline(createReadStream(file), createGunzip(), extract);
  const headers: tar.Header[] = [];
  for await (const entry of extract) {
    headers.push(entry.header);
    entry.resume();
  }
  await done;
  return headers;
}

/** A tar.gz built entry by entry, for archives no honest tool writes. */
async function hostileArchive(file: string, entries: Array<{ name: string; type?: 'file' | 'symlink' | 'link'; body?: string; linkname?: string }>): Promise<void> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === 'symlink' || e.type === 'link') pack.entry({ name: e.name, type: e.type, linkname: e.linkname });
    else pack.entry({ name: e.name }, e.body ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  await writeFile(file, gzipSync(Buffer.concat(chunks)));
}

function errorLines(stderr: string): string[] {
  return stderr.trim().split('\n').filter((l) => l.startsWith('cnab-oci: error:'));
}

async function catalog(host: string): Promise<string[]> {
  const res = await request(`http://${host}/v2/_catalog`);
  return ((await res.body.json()) as { repositories?: string[] }).repositories ?? [];
}

describe('thick bundles: archive and import', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let work: string;
  let bundleRef: string;
  let sourceDigest: string;
  let archive: string;
  const images: Record<string, Descriptor> = {};

  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-archive-'));
    const client = new RegistryClient();
    const repo = (name: string) => client.repository(parseReference(`${a.host}/src/${name}`));
    images.installer = await pushImage(repo('installer'), { format: 'docker', layers: [2048, 200_000] });
    await repo('installer').tag(images.installer, '1.0');
    images.web = await pushMultiArch(repo('web'));
    await repo('web').tag(images.web, '2.0');
    images.db = await pushImage(repo('db'), { layers: [4096] });
    await client.close();
    const bundle = {
      schemaVersion: 'v1.2.0',
      name: 'shop',
      version: '1.2.3',
      invocationImages: [{ imageType: 'docker', image: `${a.host}/src/installer:1.0` }],
      images: {
        web: { imageType: 'oci', image: `${a.host}/src/web:2.0` },
        db: { imageType: 'oci', image: `${a.host}/src/db@${images.db.digest}` },
      },
    };
    await writeFile(join(work, 'bundle.json'), JSON.stringify(bundle));
    bundleRef = `${a.host}/acme/shop:1.2.3`;
    const push = await runCli(['push', join(work, 'bundle.json'), '--target', bundleRef]);
    if (push.code !== 0) throw new Error(push.stderr);
    sourceDigest = push.stdout.trim();
    const pull = await runCli(['pull', bundleRef, '--bundle', join(work, 'source.json'), '--relocation-map', join(work, 'source-map.json')]);
    if (pull.code !== 0) throw new Error(pull.stderr);
    archive = join(work, 'shop.tgz');
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('archives a bundle from a registry, the same bytes every time', async () => {
    const first = await runCli(['--json', 'archive', bundleRef, archive]);
    expect(first.code, first.stderr).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.digest).toBe(sourceDigest);
    expect(out.images).toHaveLength(3);
    expect(out.fileSize).toBe((await stat(archive)).size);
    const again = join(work, 'again.tgz');
    const second = await runCli(['archive', bundleRef, again]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.trim()).toBe(sourceDigest);
    expect(await sha256File(again)).toBe(await sha256File(archive));
    // No temporary file left next to the archive.
    expect((await readdir(work)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('lays the archive out as CNAB 104 / Porter: bundle.json, relocation-mapping.json, artifacts/layout, fixed headers', async () => {
    const headers = await listEntries(archive);
    const names = headers.map((h) => h.name);
    expect(names.slice(0, 7)).toEqual([
      './',
      './bundle.json',
      './relocation-mapping.json',
      './artifacts/',
      './artifacts/layout/',
      './artifacts/layout/oci-layout',
      './artifacts/layout/index.json',
    ]);
    expect(names).toContain('./artifacts/layout/blobs/sha256/');
    expect(names).toContain(`./artifacts/layout/blobs/sha256/${images.web!.digest.slice(7)}`);
    for (const h of headers) {
      expect(h.mtime?.getTime(), h.name).toBe(0);
      expect([h.uid, h.gid, h.uname ?? '', h.gname ?? ''], h.name).toEqual([0, 0, '', '']);
      expect(h.mode, h.name).toBe(h.type === 'directory' ? 0o755 : 0o644);
      expect(['file', 'directory']).toContain(h.type);
    }
    const dir = join(work, 'extracted');
    await mkdir(dir);
    await run('tar', ['-xzf', archive, '-C', dir]);
    expect(await readFile(join(dir, 'bundle.json'), 'utf8')).toBe(await readFile(join(work, 'source.json'), 'utf8'));
    expect(JSON.parse(await readFile(join(dir, 'relocation-mapping.json'), 'utf8'))).toEqual(JSON.parse(await readFile(join(work, 'source-map.json'), 'utf8')));
    // Independent readers: umoci lists the names, skopeo reads and copies the images by their original reference.
    const layout = join(dir, 'artifacts', 'layout');
    const { stdout: ls } = await run('umoci', ['ls', '--layout', layout]);
    expect(ls.split('\n')).toContain(`${a.host}/src/web:2.0`);
    expect(ls.split('\n')).toContain(`${a.host}/acme/shop@${images.web!.digest}`);
    const { stdout: raw } = await skopeo('inspect', '--raw', `oci:${layout}:${a.host}/src/web:2.0`);
    expect(JSON.parse(raw).manifests).toHaveLength(2);
    await skopeo('copy', '--all', `oci:${layout}:${a.host}/src/web:2.0`, `oci:${join(work, 'skopeo-web')}:web`);
    // (skopeo's layout reader skips index.json entries with Docker media types, like the installer;
    // go-containerregistry, which Porter uses, reads them, and so does our import below.)
  });

  it('imports into another registry and into oci:DIR; pulling back gives the same bundle bytes', async () => {
    const target = `${b.host}/imported/shop:1.2.3`;
    const imp = await runCli(['--json', 'import', archive, '--target', target, '--relocation-map', join(work, 'imp-map.json')]);
    expect(imp.code, imp.stderr).toBe(0);
    const out = JSON.parse(imp.stdout);
    expect(out.digest).toBe(sourceDigest);
    expect(out.verifiedBlobs).toBeGreaterThan(8);
    expect(out.bytesMoved).toBeGreaterThan(200_000);
    const map = JSON.parse(await readFile(join(work, 'imp-map.json'), 'utf8'));
    expect(map[`${a.host}/src/web:2.0`]).toBe(`${b.host}/imported/shop@${images.web!.digest}`);
    const pull = await runCli(['pull', target, '--bundle', join(work, 'imported.json'), '--relocation-map', join(work, 'imported-map.json')]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(await readFile(join(work, 'imported.json'), 'utf8')).toBe(await readFile(join(work, 'source.json'), 'utf8'));
    await skopeo('copy', '--all', '--src-tls-verify=false', `docker://${b.host}/imported/shop@${images.web!.digest}`, `oci:${join(work, 'imp-web')}:web`);

    const toDir = await runCli(['import', archive, '--target', `oci:${join(work, 'imported-layout')}:shop`]);
    expect(toDir.code, toDir.stderr).toBe(0);
    expect(toDir.stdout.trim()).toBe(sourceDigest);
  });

  it('refuses an archive with a corrupted blob before pushing anything, naming the digest', async () => {
    const dir = join(work, 'corrupt');
    await mkdir(dir);
    await run('tar', ['-xzf', archive, '-C', dir]);
    const blobs = join(dir, 'artifacts', 'layout', 'blobs', 'sha256');
    const sizes = await Promise.all((await readdir(blobs)).map(async (n) => ({ n, size: (await stat(join(blobs, n))).size })));
    const biggest = sizes.sort((x, y) => y.size - x.size)[0]!.n;
    const bytes = await readFile(join(blobs, biggest));
    bytes[1000] = bytes[1000]! ^ 0xff;
    await writeFile(join(blobs, biggest), bytes);
    const bad = join(work, 'corrupt.tgz');
    await run('tar', ['-czf', bad, '-C', dir, '.']);
    const before = await catalog(b.host);
    const res = await runCli(['import', bad, '--target', `${b.host}/corrupt/shop:1`]);
    expect(res.code).toBe(2);
    expect(errorLines(res.stderr)).toHaveLength(1);
    expect(res.stderr).toContain(`sha256:${biggest}`);
    expect(res.stderr).toContain(bad);
    expect(await catalog(b.host)).toEqual(before);
    expect(before).not.toContain('corrupt/shop');
  });

  it('refuses hostile archives: .. paths, absolute paths, symlinks, hard links', async () => {
    const cases: Array<[string, Parameters<typeof hostileArchive>[1], RegExp]> = [
      ['dotdot', [{ name: './bundle.json', body: '{}' }, { name: '../escaped', body: 'x' }], /"\.\.\/escaped".*"\.\." path component/],
      ['deep-dotdot', [{ name: 'artifacts/layout/../../../escaped', body: 'x' }], /"\.\." path component/],
      ['absolute', [{ name: '/tmp/escaped', body: 'x' }], /absolute path/],
      ['symlink', [{ name: './artifacts', type: 'symlink', linkname: '/etc' }, { name: './artifacts/passwd', body: 'x' }], /symlink -> "\/etc"/],
      ['hardlink', [{ name: './bundle.json', type: 'link', linkname: '/etc/passwd' }], /link -> "\/etc\/passwd"/],
    ];
    const results = await Promise.all(cases.map(async ([name, entries]) => {
      const file = join(work, `${name}.tgz`);
      await hostileArchive(file, entries);
      return runCli(['import', file, '--target', `oci:${join(work, `hostile-${name}`)}:x`]);
    }));
    for (const [i, [name, , message]] of cases.entries()) {
      const file = join(work, `${name}.tgz`);
      const res = results[i]!;
      expect(res.code, `${name}: ${res.stderr}`).toBe(2);
      expect(errorLines(res.stderr), res.stderr).toHaveLength(1);
      expect(res.stderr).toMatch(message);
      expect(res.stderr).toContain(file);
    }
    await expect(stat(join(tmpdir(), 'escaped'))).rejects.toThrow();
  });

  it('imports an archive in the shape Porter writes', async () => {
    // Porter: ./bundle.json (canonical), ./relocation-mapping.json (compact Go JSON), and
    // ./artifacts/layout written by go-containerregistry, each image named only by its
    // relocated reference (the relocation map's value).
    const dir = join(work, 'porter');
    const layoutDir = join(dir, 'artifacts', 'layout');
    await mkdir(layoutDir, { recursive: true });
    const map = JSON.parse(await readFile(join(work, 'source-map.json'), 'utf8')) as Record<string, string>;
    const client = new RegistryClient();
    const source = client.repository(parseReference(bundleRef));
    const layout = await OciLayout.open(layoutDir, { create: true });
    const manifests: Descriptor[] = [];
    for (const relocated of Object.values(map).sort()) {
      const desc = await source.resolve(relocated.slice(relocated.indexOf('@') + 1));
      await copyGraph(source, layout, desc);
      manifests.push({ mediaType: desc.mediaType, size: desc.size, digest: desc.digest, annotations: { 'org.opencontainers.image.ref.name': relocated } });
    }
    await client.close();
    await writeFile(join(layoutDir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
    await writeFile(join(layoutDir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(dir, 'bundle.json'), await readFile(join(work, 'source.json')));
    await writeFile(join(dir, 'relocation-mapping.json'), JSON.stringify(Object.fromEntries(Object.entries(map).sort())));
    const file = join(work, 'porter.tgz');
    await run('tar', ['-czf', file, '-C', dir, './bundle.json', './relocation-mapping.json', './artifacts']);
    const res = await runCli(['import', file, '--target', `${b.host}/porter/shop:1.2.3`]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe(sourceDigest);
    const pull = await runCli(['pull', `${b.host}/porter/shop:1.2.3`, '--bundle', join(work, 'porter.json'), '--relocation-map', join(work, 'porter-map.json')]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(await readFile(join(work, 'porter.json'), 'utf8')).toBe(await readFile(join(work, 'source.json'), 'utf8'));
  });

  it('refuses a missing archive, an output directory that does not exist, and a thin bundle, with exit 2', async () => {
    const thin = join(work, 'thin');
    await mkdir(thin);
    await writeFile(join(thin, 'bundle.json'), await readFile(join(work, 'source.json')));
    await run('tar', ['-czf', join(work, 'thin.tgz'), '-C', thin, '.']);
    const cases: Array<[string[], RegExp]> = [
      [['import', join(work, 'nope.tgz'), '--target', `${b.host}/x/y:1`], /nope\.tgz: no such file/],
      [['archive', bundleRef, join(work, 'no-dir', 'x.tgz')], /no-dir/],
      [['import', join(work, 'thin.tgz'), '--target', `${b.host}/x/y:1`], /thin\.tgz: no artifacts\/layout\/ directory/],
      [['import', join(work, 'source.json'), '--target', `${b.host}/x/y:1`], /source\.json: not a valid tar archive/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    for (const [i, [args, message]] of cases.entries()) {
      const res = results[i]!;
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(2);
      expect(errorLines(res.stderr), res.stderr).toHaveLength(1);
      expect(res.stderr).toMatch(message);
    }
  });
});
