import { createGzip } from 'node:zlib';
import { writeFile } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';
import tar from 'tar-stream';

/**
 * Hostile archives for `cnab-oci import`: each must be refused with one line naming the entry,
 * exit status 2, and nothing written outside (or inside) the target.
 */
export interface ArchiveCase {
  name: string;
  entries: Array<{ name: string; type?: 'file' | 'symlink' | 'link' | 'directory'; linkname?: string; body?: string }>;
  pattern: RegExp;
}

export const ARCHIVE_CASES: ArchiveCase[] = [
  { name: 'absolute-path', entries: [{ name: 'bundle.json', body: '{}' }, { name: '/tmp/cnab-oci-corpus-evil', body: 'pwned' }], pattern: /refusing entry "\/tmp\/cnab-oci-corpus-evil"/ },
  { name: 'dot-dot', entries: [{ name: 'bundle.json', body: '{}' }, { name: 'artifacts/../../escape.txt', body: 'pwned' }], pattern: /refusing entry "artifacts\/\.\.\/\.\.\/escape\.txt"/ },
  { name: 'symlink-out', entries: [{ name: 'artifacts', type: 'symlink', linkname: '/etc' }, { name: 'bundle.json', body: '{}' }], pattern: /refusing entry "artifacts"/ },
  { name: 'hardlink-out', entries: [{ name: 'bundle.json', body: '{}' }, { name: 'passwd', type: 'link', linkname: '../../../../etc/passwd' }], pattern: /refusing entry "passwd"/ },
];

export async function writeArchive(path: string, c: ArchiveCase): Promise<void> {
  const pack = tar.pack();
  for (const e of c.entries) {
    const type = e.type ?? 'file';
    if (type === 'file') pack.entry({ name: e.name, type, mode: 0o644 }, e.body ?? '');
    else pack.entry({ name: e.name, type, linkname: e.linkname, mode: 0o755 });
  }
  pack.finalize();
  await writeFile(path, await buffer(pack.pipe(createGzip())));
}
