import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packPackage } from '../../../../src/cnr/client/pack.js';
import { PackageMismatchError, unpackPackage, verifyPackage } from '../../../../src/cnr/client/unpack.js';
import { CnrError } from '../../../../src/cnr/model/errors.js';
import { inspectPackage } from '../../../../src/cnr/model/package.js';
import { UnsafeArchiveError } from '../../../../src/content/tar.js';
import { DigestMismatchError, InputError } from '../../../../src/oci/errors.js';
import { rawTarGz, type RawEntry } from './tarballs.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'cnab-oci-cnr-unpack-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const chart = (): Promise<Buffer> =>
  rawTarGz([
    { name: 'app/', type: 'directory' },
    { name: 'app/Chart.yaml', body: 'name: app\nversion: 1.0.0\n' },
    { name: 'app/templates/a.yaml', body: 'a' },
    { name: 'app/run.sh', body: '#!/bin/sh\n', mode: 0o755 },
  ]);

describe('verifyPackage', () => {
  it('accepts the bytes the API described and returns what they hold', async () => {
    const bytes = await chart();
    const { digest } = await inspectPackage(bytes);
    const content = await verifyPackage(bytes, { digest, size: bytes.length });
    expect(content).toMatchObject({ digest, size: bytes.length, chart: { name: 'app', version: '1.0.0' } });
  });

  it('names expected and actual size', async () => {
    const bytes = await chart();
    const { digest } = await inspectPackage(bytes);
    const checking = verifyPackage(bytes, { digest, size: bytes.length + 1 }, { label: 'ns/app 1.0.0 (helm)' });
    await expect(checking).rejects.toThrow(PackageMismatchError);
    await expect(verifyPackage(bytes, { digest, size: 3 }, { label: 'ns/app 1.0.0 (helm)' })).rejects.toThrow(
      `size mismatch for ns/app 1.0.0 (helm): expected 3 bytes, got ${bytes.length} bytes`,
    );
  });

  it('names expected and actual CNR digest, as a digest mismatch (retried like any damaged download)', async () => {
    const bytes = await chart();
    const { digest } = await inspectPackage(bytes);
    const wrong = 'a'.repeat(64);
    const err = await verifyPackage(bytes, { digest: wrong, size: bytes.length }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as Error).message).toBe(`digest mismatch for package: expected ${wrong}, got ${digest}`);
    expect(err).toMatchObject({ field: 'digest', expected: wrong, actual: digest });
  });

  it('compares the digest of the tar, not of the gzip bytes', async () => {
    const bytes = await chart();
    const gzipDigest = (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex');
    await expect(verifyPackage(bytes, { digest: gzipDigest, size: bytes.length })).rejects.toThrow(/digest mismatch/);
  });

  it('refuses a malformed expectation and content that is no package', async () => {
    const bytes = await chart();
    await expect(verifyPackage(bytes, { digest: 'sha256:abc', size: bytes.length })).rejects.toThrow(InputError);
    const notGzip = Buffer.from('hello');
    await expect(verifyPackage(notGzip, { digest: 'a'.repeat(64), size: 5 })).rejects.toThrow(CnrError);
    const hostile = await rawTarGz([{ name: '../evil', body: 'x' }]);
    await expect(verifyPackage(hostile, { digest: 'a'.repeat(64), size: hostile.length })).rejects.toThrow(/refusing entry "\.\.\/evil"/);
  });
});

describe('unpackPackage', () => {
  it('extracts into a new directory, parents included, keeping the executable bit', async () => {
    const dest = join(work, 'out', 'deeper');
    const result = await unpackPackage(await chart(), dest);
    expect(result).toEqual({ dir: dest, files: ['app/Chart.yaml', 'app/templates/a.yaml', 'app/run.sh'] });
    expect(await readFile(join(dest, 'app', 'templates', 'a.yaml'), 'utf8')).toBe('a');
    expect((await stat(join(dest, 'app', 'run.sh'))).mode & 0o100).toBe(0o100);
    expect((await stat(join(dest, 'app', 'Chart.yaml'))).mode & 0o111).toBe(0);
  });

  it('round-trips what packPackage made', async () => {
    const src = join(work, 'src');
    await mkdir(join(src, 'templates'), { recursive: true });
    await writeFile(join(src, 'Chart.yaml'), 'name: app\nversion: 2.0.0\n');
    await writeFile(join(src, 'templates', 'x.yaml'), 'x: 1\n');
    const bytes = await packPackage(src, { packageName: 'app', mediaType: 'helm' });
    const { digest } = await verifyPackage(bytes, { digest: (await inspectPackage(bytes)).digest, size: bytes.length });
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    await unpackPackage(bytes, join(work, 'dst'));
    expect(await readFile(join(work, 'dst', 'app', 'templates', 'x.yaml'), 'utf8')).toBe('x: 1\n');
  });

  it('accepts an existing empty directory and refuses a non-empty one or a file', async () => {
    const empty = join(work, 'empty');
    await mkdir(empty);
    await unpackPackage(await chart(), empty);
    expect(await readdir(empty)).toEqual(['app']);
    await expect(unpackPackage(await chart(), empty)).rejects.toThrow(`${empty}: exists and is not empty`);
    await writeFile(join(work, 'file'), 'x');
    await expect(unpackPackage(await chart(), join(work, 'file'))).rejects.toThrow(/exists and is not a directory/);
  });

  it('keeps links that stay inside the package', async () => {
    const dest = join(work, 'links');
    const bytes = await rawTarGz([
      { name: 'app/values.yaml', body: 'v' },
      { name: 'app/templates/values.yaml', type: 'symlink', linkname: '../values.yaml' },
      { name: 'app/copy.yaml', type: 'link', linkname: 'app/values.yaml' },
    ]);
    const result = await unpackPackage(bytes, dest);
    expect(result.files).toEqual(['app/values.yaml', 'app/copy.yaml']);
    expect(await readlink(join(dest, 'app', 'templates', 'values.yaml'))).toBe('../values.yaml');
    expect(await readFile(join(dest, 'app', 'templates', 'values.yaml'), 'utf8')).toBe('v');
    expect((await stat(join(dest, 'app', 'copy.yaml'))).ino).toBe((await stat(join(dest, 'app', 'values.yaml'))).ino);
  });

  describe('hostile archives: refused, and nothing left behind', () => {
    const cases: Array<[string, RawEntry[], RegExp]> = [
      ['an absolute path', [{ name: 'app/ok', body: 'x' }, { name: '/tmp/evil', body: 'x' }], /refusing entry "\/tmp\/evil": absolute path/],
      ['a ../ path', [{ name: 'app/ok', body: 'x' }, { name: 'app/../../evil', body: 'x' }], /refusing entry "app\/\.\.\/\.\.\/evil": "\.\." path component/],
      ['a symlink to /etc', [{ name: 'app/ok', body: 'x' }, { name: 'app/etc', type: 'symlink', linkname: '/etc' }], /refusing entry "app\/etc": symlink to "\/etc" points outside/],
      ['a symlink climbing out', [{ name: 'app/up', type: 'symlink', linkname: '../../..' }], /refusing entry "app\/up": symlink to "\.\.\/\.\.\/\.\." points outside/],
      [
        'symlinks that climb out only together',
        [
          { name: 'here', type: 'symlink', linkname: '.' },
          { name: 'out', type: 'symlink', linkname: 'here/..' },
        ],
        /refusing entry "out": symlink to "here\/\.\." points outside/,
      ],
      ['a symlink loop', [{ name: 'a', type: 'symlink', linkname: 'b/x' }, { name: 'b', type: 'symlink', linkname: 'a' }], /points outside/],
      ['a file written through a symlink', [{ name: 'app/dir', type: 'symlink', linkname: '.' }, { name: 'app/dir/x', body: 'x' }], /refusing entry "app\/dir\/x": "app\/dir" is a symlink/],
      ['a hard link out', [{ name: 'app/ok', body: 'x' }, { name: 'app/passwd', type: 'link', linkname: '/etc/passwd' }], /refusing entry "app\/passwd": hard link to "\/etc\/passwd" points outside/],
      ['a hard link up', [{ name: 'app/passwd', type: 'link', linkname: '../../etc/passwd' }], /hard link to "\.\.\/\.\.\/etc\/passwd" points outside/],
      ['a hard link to no earlier file', [{ name: 'app/x', type: 'link', linkname: 'app/later' }, { name: 'app/later', body: 'x' }], /hard link to "app\/later" points outside the package or at no earlier file/],
      ['a character device', [{ name: 'app/ok', body: 'x' }, { name: 'app/null', type: 'character-device' }], /refusing entry "app\/null": character-device/],
      ['a block device', [{ name: 'app/sda', type: 'block-device' }], /refusing entry "app\/sda": block-device/],
      ['a FIFO', [{ name: 'app/pipe', type: 'fifo' }], /refusing entry "app\/pipe": fifo/],
      ['a file twice', [{ name: 'app/x', body: '1' }, { name: './app/x', body: '2' }], /refusing entry "\.\/app\/x": appears twice/],
      ['a file then a directory of the same name', [{ name: 'app/x', body: '1' }, { name: 'app/x/', type: 'directory' }], /appears twice/],
      ['a file below a file', [{ name: 'app/x', body: '1' }, { name: 'app/x/y', body: '2' }], /refusing entry "app\/x\/y": "app\/x" is a file/],
      ['a symlink over a directory', [{ name: 'app/d/x', body: '1' }, { name: 'app/d', type: 'symlink', linkname: '.' }], /refusing entry "app\/d": appears twice/],
    ];

    it.each(cases)('%s (new directory)', async (_what, entries, message) => {
      const dest = join(work, 'new', 'dest');
      const unpacking = unpackPackage(await rawTarGz(entries), dest);
      await expect(unpacking).rejects.toThrow(UnsafeArchiveError);
      await expect(unpackPackage(await rawTarGz(entries), dest)).rejects.toThrow(message);
      expect(existsSync(join(work, 'new'))).toBe(false);
    });

    it.each(cases)('%s (existing empty directory)', async (_what, entries, message) => {
      const dest = join(work, 'empty');
      await mkdir(dest);
      await expect(unpackPackage(await rawTarGz(entries), dest)).rejects.toThrow(message);
      expect(await readdir(dest)).toEqual([]);
    });

    it('writes nothing outside even before failing', async () => {
      await unpackPackage(await rawTarGz([{ name: 'app/up', type: 'symlink', linkname: '../../x' }]), join(work, 'd')).catch(() => undefined);
      expect(await readdir(work)).toEqual([]);
      await expect(lstat(join(work, 'x'))).rejects.toThrow();
    });
  });

  it('refuses what is not a gzipped tar, an empty archive and a gzip bomb', async () => {
    await expect(unpackPackage(Buffer.from('plain'), join(work, 'a'))).rejects.toThrow('package: not gzip data');
    await expect(unpackPackage(gzipSync(Buffer.from('not a tar at all, just text '.repeat(40))), join(work, 'b'))).rejects.toThrow(/not a gzipped tar archive/);
    await expect(unpackPackage(gzipSync(Buffer.alloc(1024)), join(work, 'c'))).rejects.toThrow(/empty archive/);
    const big = await rawTarGz([{ name: 'app/big', body: 'x'.repeat(100_000) }]);
    await expect(unpackPackage(big, join(work, 'd'), { maxUnpackedSize: 10_000 })).rejects.toThrow(/unpacks to more than 10000 bytes/);
    expect(await readdir(work)).toEqual([]);
  });
});
