import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { once } from 'node:events';
import { mkdir, mkdtemp, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, sep } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { InputError, InvalidContentError } from '../oci/errors.js';

/**
 * Tar archives of directories, both ways, for OCI layout archives (`oci-archive:`) and CNAB
 * thick bundles. Writing is deterministic (same tree -> same bytes) and streamed (a file is never
 * held in memory); reading refuses anything that could land outside the target directory.
 */

export interface PackOptions {
  /** gzip the tar (the gzip header's mtime is 0, so the output stays deterministic). */
  gzip?: boolean;
  /** Prefix of every entry name, e.g. `./` (Porter writes `./bundle.json`); a root entry `./` is written too. */
  prefix?: './' | '';
  /**
   * Relative paths (directories end in `/`) written first, in this order; everything else follows
   * in byte order of path, each directory before its contents. Missing ones are ignored.
   */
  first?: string[];
}

interface PackEntry {
  path: string; // relative, '/'-separated, directories end in '/'
  size: number;
}

/** Every file and directory under `dir`, in the order they are written. Only files and directories. */
export async function listTree(dir: string, first: string[] = []): Promise<PackEntry[]> {
  const entries: PackEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await stat(join(dir, path));
      if (st.isDirectory()) {
        entries.push({ path: `${path}/`, size: 0 });
        await walk(path);
      } else if (st.isFile()) {
        entries.push({ path, size: st.size });
      }
    }
  };
  await walk('');
  const rank = (p: string) => {
    const i = first.indexOf(p);
    return i < 0 ? first.length : i;
  };
  // A stable sort keeps the walk order among everything not named in `first`.
  return entries.map((e, i) => ({ e, i })).sort((a, b) => rank(a.e.path) - rank(b.e.path) || a.i - b.i).map(({ e }) => e);
}

const EPOCH = new Date(0);

type TarHeader = Partial<tar.Header> & { name: string };

/** Write `dir` as a tar (optionally gzipped) to `out`: fixed modes, zero mtimes and owners, no user names. */
export async function packDirectory(dir: string, out: Writable, options: PackOptions = {}): Promise<void> {
  const prefix = options.prefix ?? '';
  const entries = await listTree(dir, options.first);
  const pack = tar.pack();
  const header = (name: string, type: 'file' | 'directory', size: number): TarHeader => ({
    name,
    type,
    size,
    mode: type === 'directory' ? 0o755 : 0o644,
    mtime: EPOCH,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
  });
  const feed = (async () => {
    if (prefix) await addEntry(pack, header(prefix, 'directory', 0));
    for (const e of entries) {
      if (e.path.endsWith('/')) {
        await addEntry(pack, header(`${prefix}${e.path}`, 'directory', 0));
      } else {
        await addEntry(pack, header(`${prefix}${e.path}`, 'file', e.size), createReadStream(join(dir, ...e.path.split('/'))));
      }
    }
    pack.finalize();
  })();
  feed.catch((err) => pack.destroy(err as Error));
  const stages: unknown[] = [pack];
  if (options.gzip) stages.push(createGzip());
  await Promise.all([pipeline([...stages, out] as unknown as [Readable, Writable]), feed]);
}

function addEntry(pack: tar.Pack, header: TarHeader, content?: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    if (!content) {
      (sink as unknown as Writable).end();
      return;
    }
    content.on('error', (err) => {
      sink.destroy(err);
      reject(err);
    });
    content.pipe(sink as unknown as Writable);
  });
}

/**
 * Temporary files and directories of transfers in progress (extracted archives, archives being
 * written), so that a process interrupted by a signal can remove them: `removeTemporarySync`.
 */
const temporary = new Set<string>();

/** A new temporary directory under the system's, removed by `removeTemporary` (or on a signal). */
export async function makeTemporaryDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temporary.add(dir);
  return dir;
}

export async function removeTemporary(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
  temporary.delete(path);
}

/** Remove every temporary path still there; synchronous, for a signal handler. */
export function removeTemporarySync(): void {
  for (const path of temporary) rmSync(path, { recursive: true, force: true });
  temporary.clear();
}

/** Write the tar of `dir` to `file` atomically: a temporary file next to it, fsync, rename. */
export async function writeTarFile(dir: string, file: string, options: PackOptions = {}): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
  temporary.add(tmp);
  try {
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true });
    // Opened before anything streams, so a missing directory is an error here, not an unhandled event.
    await once(out, 'open');
    await packDirectory(dir, out, options).catch((err: unknown) => {
      out.destroy();
      throw err;
    });
    await rename(tmp, file);
    temporary.delete(tmp);
  } catch (err) {
    await removeTemporary(tmp);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${file}: directory ${dirname(file)} does not exist`);
    if (code === 'EACCES') throw new InputError(`${file}: permission denied`);
    throw err;
  }
}

/** An archive that cannot be extracted safely or is not a tar at all: bad input, exit status 2. */
export class UnsafeArchiveError extends InvalidContentError {
  override readonly exitCode: number = 2;
}

/**
 * The safe relative path of an entry name, or an error: no absolute paths, no `..`, no drive
 * letters or backslashes, no NUL. `./a/./b/` -> `a/b`; the root itself -> ''.
 */
export function safeEntryPath(name: string, archive: string): string {
  const bad = (why: string) => new UnsafeArchiveError(`${archive}: refusing entry ${JSON.stringify(name)}: ${why}`);
  if (name.includes('\0')) throw bad('NUL in name');
  if (name.startsWith('/')) throw bad('absolute path');
  if (/^[a-zA-Z]:/.test(name) || name.includes('\\')) throw bad('Windows path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw bad('".." path component');
  return parts.join('/');
}

export interface ExtractOptions {
  /** Called with each regular file written (relative path and size). */
  onFile?: (path: string, size: number) => void;
}

/**
 * Extract a tar or tar.gz (detected by its magic bytes) into `dest`, which must be a new,
 * empty directory of ours. Only regular files and directories are accepted: a symlink, hard
 * link, device or FIFO, an absolute name, a `..` component or a file written twice fails the
 * whole extraction (the caller removes `dest`).
 */
export async function extractArchive(file: string, dest: string, options: ExtractOptions = {}): Promise<void> {
  const gzipped = await isGzip(file);
  const extract = tar.extract();
  const source = createReadStream(file);
  const stages: unknown[] = [source];
  if (gzipped) stages.push(createGunzip());
  stages.push(extract);
  const piped = pipeline(stages as unknown as [Readable, Writable]);
  piped.catch(() => {});
  try {
    let entries = 0;
    for await (const entry of extract) {
      entries++;
      const h = entry.header;
      const rel = safeEntryPath(h.name, file);
      const type = h.type ?? 'file';
      if (type === 'directory') {
        if (rel !== '') await mkdir(join(dest, ...rel.split('/')), { recursive: true });
        (entry as unknown as Readable).resume();
        continue;
      }
      if (type !== 'file' && type !== 'contiguous-file') {
        const link = h.linkname ? ` -> ${JSON.stringify(h.linkname)}` : '';
        throw new UnsafeArchiveError(`${file}: refusing entry ${JSON.stringify(h.name)}: ${type}${link} (only regular files and directories are extracted)`);
      }
      if (rel === '') throw new UnsafeArchiveError(`${file}: refusing a file entry with an empty name`);
      const path = join(dest, ...rel.split('/'));
      if (!path.startsWith(dest + sep)) throw new UnsafeArchiveError(`${file}: refusing entry ${JSON.stringify(h.name)}: outside the target`);
      await mkdir(dirname(path), { recursive: true });
      let fh;
      try {
        fh = await open(path, 'wx', 0o644);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UnsafeArchiveError(`${file}: entry ${JSON.stringify(h.name)} appears twice`);
        throw err;
      }
      await pipeline(entry as unknown as Readable, fh.createWriteStream());
      options.onFile?.(rel, h.size ?? 0);
    }
    await piped;
    if (entries === 0) throw new UnsafeArchiveError(`${file}: empty archive`);
  } catch (err) {
    extract.destroy();
    source.destroy();
    if (err instanceof InvalidContentError) throw err;
    const msg = (err as Error).message;
    if (/header|tar|unexpected end|incorrect header|invalid/i.test(msg)) throw new UnsafeArchiveError(`${file}: not a valid tar archive (${msg})`);
    throw err;
  }
}

async function isGzip(file: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${file}: no such file`);
    if (code === 'EISDIR') throw new InputError(`${file}: is a directory, expected an archive file`);
    throw new InputError(`${file}: cannot read (${code ?? String(err)})`);
  }
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fh.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fh.close();
  }
}
