import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractArchive, listTree, packDirectory, safeEntryPath, UnsafeArchiveError, writeTarFile } from '../../../src/content/tar.js';

function sink(): { stream: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
    bytes: () => Buffer.concat(chunks),
  };
}

async function rawTar(entries: Array<{ name: string; type?: 'file' | 'symlink' | 'directory'; body?: string; linkname?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname });
    else if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory' });
    else pack.entry({ name: e.name }, e.body ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('safeEntryPath', () => {
  it('normalises harmless names', () => {
    expect(safeEntryPath('./bundle.json', 'a.tgz')).toBe('bundle.json');
    expect(safeEntryPath('./artifacts/./layout/', 'a.tgz')).toBe('artifacts/layout');
    expect(safeEntryPath('./', 'a.tgz')).toBe('');
    expect(safeEntryPath('a//b', 'a.tgz')).toBe('a/b');
    expect(safeEntryPath('a..b/c', 'a.tgz')).toBe('a..b/c');
  });

  it.each([
    ['../x', /"\.\." path component/],
    ['a/../../x', /"\.\." path component/],
    ['/etc/passwd', /absolute path/],
    ['C:/x', /Windows path/],
    ['a\\..\\x', /Windows path/],
    ['a\0b', /NUL/],
  ])('refuses %j', (name, message) => {
    expect(() => safeEntryPath(name, 'a.tgz')).toThrow(UnsafeArchiveError);
    expect(() => safeEntryPath(name, 'a.tgz')).toThrow(message);
  });
});

describe('packDirectory and extractArchive', () => {
  let work: string;
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-tar-'));
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function tree(dir: string): Promise<void> {
    await mkdir(join(dir, 'artifacts', 'layout', 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(dir, 'bundle.json'), '{"name":"x"}');
    await writeFile(join(dir, 'relocation-mapping.json'), '{}');
    await writeFile(join(dir, 'artifacts', 'layout', 'index.json'), '{}');
    await writeFile(join(dir, 'artifacts', 'layout', 'oci-layout'), '{}');
    await writeFile(join(dir, 'artifacts', 'layout', 'blobs', 'sha256', 'b'), 'bb');
    await writeFile(join(dir, 'artifacts', 'layout', 'blobs', 'sha256', 'a'), 'aa');
  }

  it('writes the same bytes for the same tree, whatever the mtimes, modes and creation order', async () => {
    const one = join(work, 'one');
    const two = join(work, 'two');
    await tree(one);
    await tree(two);
    await utimes(join(two, 'bundle.json'), 1_000_000, 1_000_000);
    await chmod(join(two, 'relocation-mapping.json'), 0o600);
    const a = sink();
    const b = sink();
    await packDirectory(one, a.stream, { gzip: true, prefix: './' });
    await packDirectory(two, b.stream, { gzip: true, prefix: './' });
    expect(a.bytes().equals(b.bytes())).toBe(true);
    expect(a.bytes()[0]).toBe(0x1f); // gzip
    expect(a.bytes().readUInt32LE(4)).toBe(0); // gzip header mtime 0
  });

  it('orders entries: the `first` names, then byte order, each directory before its contents', async () => {
    await tree(work);
    const entries = await listTree(work, ['bundle.json', 'artifacts/', 'artifacts/layout/', 'artifacts/layout/index.json']);
    expect(entries.map((e) => e.path)).toEqual([
      'bundle.json',
      'artifacts/',
      'artifacts/layout/',
      'artifacts/layout/index.json',
      'artifacts/layout/blobs/',
      'artifacts/layout/blobs/sha256/',
      'artifacts/layout/blobs/sha256/a',
      'artifacts/layout/blobs/sha256/b',
      'artifacts/layout/oci-layout',
      'relocation-mapping.json',
    ]);
  });

  it('round-trips through writeTarFile and extractArchive', async () => {
    const src = join(work, 'src');
    await tree(src);
    const file = join(work, 'out.tgz');
    await writeTarFile(src, file, { gzip: true, prefix: './' });
    const dest = join(work, 'dest');
    await mkdir(dest);
    const seen: string[] = [];
    await extractArchive(file, dest, { onFile: (p) => seen.push(p) });
    expect(seen).toContain('artifacts/layout/blobs/sha256/a');
    expect(await readFile(join(dest, 'bundle.json'), 'utf8')).toBe('{"name":"x"}');
    expect((await readdir(work)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it.each([
    ['a symlink', [{ name: 'link', type: 'symlink' as const, linkname: '/etc' }], /symlink -> "\/etc"/],
    ['a .. path', [{ name: 'ok', body: 'x' }, { name: '../escape', body: 'x' }], /"\.\." path component/],
    ['an absolute path', [{ name: '/escape', body: 'x' }], /absolute path/],
    ['a file written twice', [{ name: 'a', body: 'x' }, { name: './a', body: 'y' }], /appears twice/],
    ['a file over a directory', [{ name: 'd/', type: 'directory' as const }, { name: 'd', body: 'x' }], /refusing|appears twice|EISDIR/],
  ])('refuses %s, writing nothing outside the target', async (_what, entries, message) => {
    const file = join(work, 'bad.tar');
    await writeFile(file, await rawTar(entries));
    const dest = join(work, 'dest');
    await mkdir(dest);
    await expect(extractArchive(file, dest)).rejects.toThrow(message);
    expect((await readdir(work)).sort()).toEqual(['bad.tar', 'dest']);
  });

  it('calls a file that is not a tar invalid, with exit status 2', async () => {
    const file = join(work, 'x.tgz');
    await writeFile(file, 'not a tar at all, just some text that is long enough to fill a header block? no.');
    const dest = join(work, 'dest');
    await mkdir(dest);
    const err = await extractArchive(file, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect((err as UnsafeArchiveError).exitCode).toBe(2);
  });
});
