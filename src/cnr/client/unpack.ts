import { lstat, link, mkdir, open, readdir, rm, stat, symlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { safeEntryPath, UnsafeArchiveError } from '../../content/tar.js';
import { DigestMismatchError, InputError, InvalidContentError } from '../../oci/errors.js';
import { DEFAULT_MAX_UNPACKED, inspectPackage, type PackageContent } from '../model/package.js';

/** What the API says a package is: its CNR digest (bare hex of the gunzipped tar) and the length of its gzip bytes. */
export interface ExpectedPackage {
  digest: string;
  size: number;
}

export interface PackageCheckOptions {
  /** Names the package in messages (`titi/rocketchat 1.0.1 (kpm)`); default `package`. */
  label?: string;
  /** Refuse packages that unpack to more than this (a gzip bomb); default 512 MiB. */
  maxUnpackedSize?: number;
}

/**
 * Bytes that are not the package the registry described. A DigestMismatchError, so a download
 * that arrived damaged is tried again like any other.
 */
export class PackageMismatchError extends DigestMismatchError {
  constructor(what: string, readonly field: 'size' | 'digest', expected: string, actual: string) {
    super(what, expected, actual);
    this.message = `${field} mismatch for ${what}: expected ${expected}, got ${actual}`;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Check downloaded package bytes against what the API announced: the size first (cheap), then
 * the CNR digest, computed by inspectPackage, which also refuses archives unsafe to unpack.
 */
export async function verifyPackage(bytes: Uint8Array, expected: ExpectedPackage, options: PackageCheckOptions = {}): Promise<PackageContent> {
  const what = options.label ?? 'package';
  const digest = expected.digest.toLowerCase();
  if (!HEX64.test(digest)) throw new InputError(`${what}: invalid CNR digest ${JSON.stringify(expected.digest)}: expected 64 hex digits`);
  if (!Number.isSafeInteger(expected.size) || expected.size < 0) throw new InputError(`${what}: invalid size ${expected.size}`);
  if (bytes.length !== expected.size) throw new PackageMismatchError(what, 'size', `${expected.size} bytes`, `${bytes.length} bytes`);
  const content = await inspectPackage(bytes, options.maxUnpackedSize === undefined ? {} : { maxUnpackedSize: options.maxUnpackedSize });
  if (content.digest !== digest) throw new PackageMismatchError(what, 'digest', digest, content.digest);
  return content;
}

export interface UnpackResult {
  /** The directory written to, absolute. */
  dir: string;
  /** Regular files written (hard links included), relative and `/`-separated, in archive order. */
  files: string[];
}

/** What an extracted path holds, as far as this archive is concerned. */
type Kind = 'file' | 'directory' | 'symlink';
/** Linux's own limit on links followed while resolving one path. */
const MAX_LINK_HOPS = 40;

/**
 * Extract a package (.tar.gz) into `destDir`, which must not exist or be empty. Regular files,
 * directories and links that stay inside are written; absolute names, `..`, links resolving
 * outside (followed through the archive's other links, as the kernel would), devices and FIFOs,
 * a path written twice, or anything below a symlink fail the whole extraction, and whatever was
 * created is removed. Symlinks are made last, so no entry is ever written through one.
 */
export async function unpackPackage(bytes: Uint8Array, destDir: string, options: PackageCheckOptions = {}): Promise<UnpackResult> {
  const label = options.label ?? 'package';
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) throw new UnsafeArchiveError(`${label}: not gzip data (a .tar.gz package is expected)`);
  const { dir, cleanup } = await prepareDestination(destDir);
  try {
    const files = await extract(bytes, dir, label, options.maxUnpackedSize ?? DEFAULT_MAX_UNPACKED);
    return { dir, files };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function extract(bytes: Uint8Array, dest: string, label: string, limit: number): Promise<string[]> {
  const kinds = new Map<string, Kind>();
  const links: Array<{ rel: string; name: string; target: string }> = [];
  const files: string[] = [];
  const refuse = (name: string, why: string) => new UnsafeArchiveError(`${label}: refusing entry ${JSON.stringify(name)}: ${why}`);
  const place = (rel: string) => {
    const path = join(dest, ...rel.split('/'));
    if (!path.startsWith(dest + sep)) throw new UnsafeArchiveError(`${label}: refusing entry ${JSON.stringify(rel)}: outside the target`);
    return path;
  };
  // Every ancestor must be a directory of ours: not a file, not a (future) symlink.
  const claimParents = (rel: string, name: string) => {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      const kind = kinds.get(ancestor);
      if (kind === 'file') throw refuse(name, `${JSON.stringify(ancestor)} is a file`);
      if (kind === 'symlink') throw refuse(name, `${JSON.stringify(ancestor)} is a symlink`);
      kinds.set(ancestor, 'directory');
    }
  };

  let unpacked = 0;
  const counting = new Transform({
    transform(chunk: Buffer, _enc, done) {
      unpacked += chunk.length;
      if (unpacked > limit) return done(new UnsafeArchiveError(`${label}: unpacks to more than ${limit} bytes`));
      done(null, chunk);
    },
  });
  const extractor = tar.extract();
  const piped = pipeline(Readable.from([bytes]), createGunzip(), counting, extractor);
  piped.catch(() => {});
  try {
    let entries = 0;
    for await (const entry of extractor) {
      entries++;
      const h = entry.header;
      const rel = safeEntryPath(h.name, label);
      const type = h.type ?? 'file';
      if (type === 'directory') {
        entry.resume();
        if (rel === '') continue;
        const kind = kinds.get(rel);
        if (kind !== undefined && kind !== 'directory') throw refuse(h.name, 'appears twice');
        claimParents(rel, h.name);
        kinds.set(rel, 'directory');
        await mkdir(place(rel), { recursive: true, mode: 0o755 });
        continue;
      }
      if (rel === '') throw refuse(h.name, `a ${type} entry needs a name`);
      if (kinds.has(rel)) throw refuse(h.name, 'appears twice');
      claimParents(rel, h.name);
      const path = place(rel);
      if (type === 'file' || type === 'contiguous-file') {
        kinds.set(rel, 'file');
        await mkdir(dirname(path), { recursive: true, mode: 0o755 });
        const fh = await open(path, 'wx', (h.mode ?? 0) & 0o111 ? 0o755 : 0o644);
        await pipeline(entry as unknown as Readable, fh.createWriteStream());
        files.push(rel);
      } else if (type === 'link') {
        entry.resume();
        const target = hardLinkTarget(h.linkname, kinds, () => refuse(h.name, `hard link to ${JSON.stringify(h.linkname)} points outside the package or at no earlier file`));
        kinds.set(rel, 'file');
        await mkdir(dirname(path), { recursive: true, mode: 0o755 });
        await link(place(target), path);
        files.push(rel);
      } else if (type === 'symlink') {
        entry.resume();
        if (!h.linkname || h.linkname.startsWith('/')) throw refuse(h.name, `symlink to ${JSON.stringify(h.linkname)} points outside the package`);
        kinds.set(rel, 'symlink');
        links.push({ rel, name: h.name, target: h.linkname });
      } else {
        const to = h.linkname ? ` -> ${JSON.stringify(h.linkname)}` : '';
        throw refuse(h.name, `${type}${to} (only regular files, directories and links inside the package are extracted)`);
      }
    }
    await piped;
    if (entries === 0) throw new UnsafeArchiveError(`${label}: empty archive`);
  } catch (err) {
    extractor.destroy();
    if (err instanceof InvalidContentError || (err as NodeJS.ErrnoException).syscall !== undefined) throw err;
    throw new UnsafeArchiveError(`${label}: not a gzipped tar archive (${(err as Error).message.split('\n')[0]})`);
  }

  // Every link is known now: resolve each as the kernel would, through the others.
  const targets = new Map(links.map((l) => [l.rel, l.target]));
  for (const l of links) {
    if (resolveInside(l.rel, l.target, targets) === undefined) throw refuse(l.name, `symlink to ${JSON.stringify(l.target)} points outside the package`);
  }
  for (const l of links) {
    const path = place(l.rel);
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    await symlink(l.target, path);
  }
  return files;
}

/** A hard link names an earlier regular file of the archive by its entry name. */
function hardLinkTarget(linkname: string, kinds: ReadonlyMap<string, Kind>, bad: () => Error): string {
  let target: string;
  try {
    target = safeEntryPath(linkname, 'link');
  } catch {
    throw bad();
  }
  if (kinds.get(target) !== 'file') throw bad();
  return target;
}

/**
 * Where a symlink at `rel` lands, relative to the root, or undefined when it climbs out (or
 * loops). Directories of the tree are real, so `..` is lexical except after a link, whose
 * target is then walked from the link's own directory.
 */
function resolveInside(rel: string, target: string, links: ReadonlyMap<string, string>): string | undefined {
  const stack = rel.split('/').slice(0, -1);
  const queue = target.split('/');
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (stack.length === 0) return undefined;
      stack.pop();
      continue;
    }
    stack.push(part);
    const next = links.get(stack.join('/'));
    if (next === undefined) continue;
    if (++hops > MAX_LINK_HOPS || next.startsWith('/')) return undefined;
    stack.pop();
    queue.unshift(...next.split('/'));
  }
  return stack.join('/');
}

/** A new directory, or an existing empty one; `cleanup` takes it back to how it was. */
async function prepareDestination(destDir: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = resolve(destDir);
  let exists = true;
  try {
    await lstat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw destinationError(destDir, err);
    exists = false;
  }
  if (!exists) {
    let first: string | undefined;
    try {
      first = await mkdir(dir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw destinationError(destDir, err);
    }
    return { dir, cleanup: () => rm(first ?? dir, { recursive: true, force: true }) };
  }
  // A symlink the user names as the destination is theirs to give: follow it.
  const stats = await stat(dir).catch((err: unknown) => {
    throw destinationError(destDir, err);
  });
  if (!stats.isDirectory()) throw new InputError(`${destDir}: exists and is not a directory`);
  if ((await readdir(dir)).length > 0) throw new InputError(`${destDir}: exists and is not empty`);
  return {
    dir,
    cleanup: async () => {
      for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
    },
  };
}

function destinationError(destDir: string, err: unknown): InputError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES') return new InputError(`${destDir}: permission denied`);
  if (code === 'ENOTDIR') return new InputError(`${destDir}: a parent is not a directory`);
  return new InputError(`${destDir}: cannot create (${code ?? String(err)})`);
}
