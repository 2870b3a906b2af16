import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { parse as parseYaml } from 'yaml';
import { InputError } from '../../oci/errors.js';
import { parseMediaType, parsePackageName } from '../model/names.js';
import { isRelease } from '../model/releases.js';
import { HELM_IGNORE_FILE, NO_RULES, parseHelmIgnore, type IgnoreRules } from './helmignore.js';

/**
 * A package directory as the .tar.gz the CNR API takes, the way the appr CLI packed one: every
 * file under one top directory named after the package (`NAME/Chart.yaml`, ...), as Helm
 * expects of a chart. Unlike appr the bytes are deterministic (entries in order, mtime 0,
 * owner 0:0, no user names, gzip header without a time), so the same tree always gets the same
 * CNR digest; only the permission bits come from the files.
 */
export interface PackOptions {
  /** The `name` part of `namespace/name`: the top directory of every entry. */
  packageName: string;
  /** Short or full media type; `helm` honours the directory's `.helmignore`. */
  mediaType: string;
}

interface Entry {
  /** Relative to the package directory, `/`-separated; '' is the directory itself. */
  path: string;
  stats: Stats;
}

const EPOCH = new Date(0);

type TarHeader = Partial<tar.Header> & { name: string };
/** Refuse to follow a link swapped in between the walk and the read. */
const NO_FOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);

export async function packPackage(dir: string, options: PackOptions): Promise<Buffer> {
  if (options.packageName.includes('/')) throw new InputError(`package name ${JSON.stringify(options.packageName)}: give only the name part of namespace/name`);
  // The namespace is not ours to check here; any valid one lets the name be checked alone.
  const top = parsePackageName('namespace', options.packageName).name;
  const mediaType = parseMediaType(options.mediaType);
  const root = await directoryStats(dir);
  const rules = mediaType === 'helm' ? await helmIgnoreRules(dir) : NO_RULES;
  const entries = [{ path: '', stats: root }, ...(await walk(dir, rules))];

  const pack = tar.pack();
  const feed = (async () => {
    for (const { path, stats } of entries) {
      const name = path === '' ? `${top}/` : `${top}/${path}${stats.isDirectory() ? '/' : ''}`;
      const header: TarHeader = { name, mode: stats.mode & 0o777, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '' };
      if (stats.isDirectory()) await addEntry(pack, { ...header, type: 'directory', size: 0 });
      else await addFile(pack, { ...header, type: 'file', size: stats.size }, join(dir, ...path.split('/')));
    }
    pack.finalize();
  })();
  feed.catch((err: unknown) => pack.destroy(err as Error));
  const chunks: Buffer[] = [];
  const collect = async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  };
  await Promise.all([pipeline(pack as unknown as Readable, createGzip(), collect as unknown as Writable), feed]);
  return Buffer.concat(chunks);
}

/** The release a chart directory stands for: the `version` of its `Chart.yaml`, which must be SemVer 2.0. */
export async function releaseFromChart(dir: string): Promise<string> {
  const file = join(dir, 'Chart.yaml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw fileError(file, err, 'a chart directory holds Chart.yaml');
  }
  let doc: unknown;
  try {
    // The failsafe schema reads every scalar as text: `version: 1.10` stays "1.10", not 1.1.
    doc = parseYaml(text, { schema: 'failsafe', maxAliasCount: 100 });
  } catch (err) {
    throw new InputError(`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  const version = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>).version : undefined;
  if (typeof version !== 'string' || version.trim() === '') throw new InputError(`${file}: no version`);
  const release = version.trim();
  if (!isRelease(release)) throw new InputError(`${file}: version ${JSON.stringify(release)} is not a SemVer 2.0 release such as 1.2.3`);
  return release;
}

async function directoryStats(dir: string): Promise<Stats> {
  let stats: Stats;
  try {
    stats = await stat(dir);
  } catch (err) {
    throw fileError(dir, err, 'expected the package directory');
  }
  if (!stats.isDirectory()) throw new InputError(`${dir}: not a directory`);
  return stats;
}

async function helmIgnoreRules(dir: string): Promise<IgnoreRules> {
  const file = join(dir, HELM_IGNORE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return parseHelmIgnore('', file);
    throw fileError(file, err);
  }
  return parseHelmIgnore(text, file);
}

/**
 * Files and directories under `dir`, each directory before what it holds, names in code unit
 * order. `.git` directories are left out, as appr did; anything but a regular file or a
 * directory is refused, unless an ignore rule drops it first (Helm's order).
 */
async function walk(dir: string, rules: IgnoreRules): Promise<Entry[]> {
  const out: Entry[] = [];
  const visit = async (rel: string): Promise<void> => {
    const here = rel === '' ? dir : join(dir, ...rel.split('/'));
    const names = (await readdir(here).catch((err: unknown) => Promise.reject(fileError(here, err)))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const full = join(dir, ...path.split('/'));
      const stats = await lstat(full).catch((err: unknown) => Promise.reject(fileError(full, err)));
      if (stats.isDirectory() && name === '.git') continue;
      if (rules.ignores(path, stats.isDirectory())) continue;
      if (stats.isSymbolicLink()) throw new InputError(`${full}: is a symbolic link; a package holds regular files and directories only`);
      if (stats.isDirectory()) {
        out.push({ path, stats });
        await visit(path);
      } else if (stats.isFile()) {
        out.push({ path, stats });
      } else {
        throw new InputError(`${full}: is a ${specialKind(stats)}; a package holds regular files and directories only`);
      }
    }
  };
  await visit('');
  return out;
}

function specialKind(stats: Stats): string {
  if (stats.isFIFO()) return 'FIFO';
  if (stats.isSocket()) return 'socket';
  if (stats.isBlockDevice() || stats.isCharacterDevice()) return 'device';
  return 'special file';
}

function addEntry(pack: tar.Pack, header: TarHeader): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    (sink as unknown as Writable).end();
  });
}

async function addFile(pack: tar.Pack, header: TarHeader, file: string): Promise<void> {
  let fh;
  try {
    fh = await open(file, NO_FOLLOW);
  } catch (err) {
    throw fileError(file, err);
  }
  try {
    const content = fh.createReadStream({ autoClose: false });
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(header, (err) => (err ? reject(new InputError(`${file}: changed while being packed (${err.message})`)) : resolve()));
      content.on('error', (err) => {
        sink.destroy(err);
        reject(fileError(file, err));
      });
      content.pipe(sink as unknown as Writable);
    });
  } finally {
    await fh.close();
  }
}

function fileError(path: string, err: unknown, hint?: string): InputError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new InputError(`${path}: no such file or directory${hint ? ` (${hint})` : ''}`);
  if (code === 'EACCES') return new InputError(`${path}: permission denied`);
  if (code === 'ELOOP') return new InputError(`${path}: is a symbolic link; a package holds regular files and directories only`);
  if (code === 'EISDIR') return new InputError(`${path}: is a directory`);
  return new InputError(`${path}: cannot read (${code ?? String(err)})`);
}
