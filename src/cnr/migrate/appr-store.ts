import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { formatJsonPath } from '../../cnab/json-text.js';
import { InputError } from '../../oci/errors.js';
import { inspectPackage } from '../model/package.js';
import { parseChannelName, parseFullName, parseMediaType, parsePackageName, type PackageName } from '../model/names.js';
import { isRelease, sortDescending } from '../model/releases.js';
import { ManifestViewSchema, type ChannelRecord, type ReleaseRecord } from '../model/views.js';
import { parseOrderedJson, type OrderedJson } from './ordered-json.js';

/**
 * The filesystem store of the reference server (cnr-server / appr 0.2.7), read for migration
 * (`appr-store:DIR`). Its layout, under DIR:
 *
 *   packages/packages.json                       {"packages": {ns: {name: {created_at, ...}}}}
 *   packages/NS/NAME/releases.json               {"releases": {release: {manifests: {type: view}, channels: [..]}}, "channels": {..}}
 *   packages/NS/NAME/digests/sha256/HEX          base64 text of the gzip bytes; HEX is the CNR digest
 *
 * Nothing is trusted: every JSON file is checked with zod, and file paths are built only from
 * names that pass parsePackageName and digests of 64 hex, so no read leaves DIR through them.
 */

/** A release as the store records it: what a ReleaseRecord needs before its blob is stored anywhere. */
export type ReleaseSource = Pick<ReleaseRecord, 'package' | 'release' | 'mediaType' | 'createdAt' | 'metadata' | 'digest' | 'size'>;

export interface ApprPackage {
  /** `namespace/name` */
  package: string;
  /** Verbatim, as the reference writes it (`2026-12-01T19:02:25.982159`). */
  createdAt: string;
}

export interface ApprStore {
  /** The directory holding `packages/`. */
  readonly root: string;
  /**
   * Packages in packages.json order. A name that is not a valid package name fails the call,
   * unless `onInvalid` is given: then it is reported there and left out.
   */
  packages(options?: { onInvalid?: (error: ApprStoreError) => void }): Promise<ApprPackage[]>;
  /** Every (release, media type) in releases.json order; [] when the package has no releases.json. */
  releases(pkg: string): Promise<ReleaseSource[]>;
  /** Channels in releases.json order, releases highest first; see `channelRecords`. */
  channels(pkg: string): Promise<ChannelRecord[]>;
  /** The gzip bytes of a blob, checked: an ApprBlobError when missing, not base64, or not what its name and record say. */
  blob(pkg: string, digestHex: string): Promise<Buffer>;
}

/** A store file that is missing, not JSON, or not what the reference writes. Bad input: exit status 2. */
export class ApprStoreError extends InputError {}

/** One blob that cannot be migrated; the caller reports it and goes on with the rest. */
export class ApprBlobError extends ApprStoreError {
  constructor(readonly file: string, readonly pkg: string, readonly digest: string, reason: string) {
    super(`${file}: blob of ${pkg}: ${reason}`);
  }
}

export interface ApprStoreOptions {
  /** Largest unpacked size of a blob (see inspectPackage); default 512 MiB. */
  maxUnpackedSize?: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

const PackagesFile = z.object({
  packages: z.record(
    z.string(),
    z.record(z.string(), z.object({ created_at: z.string(), namespace: z.string().optional(), name: z.string().optional() })),
  ),
});

const ReleasesFile = z.object({
  releases: z.record(z.string(), z.object({ manifests: z.record(z.string(), ManifestViewSchema), channels: z.array(z.string()).optional() })),
  channels: z.record(z.string(), z.object({ current: z.string(), name: z.string().optional() })).optional(),
});
type ReleasesJson = z.infer<typeof ReleasesFile>;

/** A package's releases.json, checked, with its key order. */
interface PackageFile {
  file: string;
  json: ReleasesJson;
  keys: OrderedJson['keys'];
}

/**
 * Open the store at `dir`: the directory holding `packages/` (the server's data directory, the
 * `cnr/` of a copy), or one level above it (holding `cnr/`), or `packages/` itself.
 */
export async function openApprStore(dir: string, options: ApprStoreOptions = {}): Promise<ApprStore> {
  const root = await findRoot(dir);
  const packagesDir = join(root, 'packages');
  const storeError = (file: string, path: ReadonlyArray<string | number>, why: string) => new ApprStoreError(`${file}: ${formatJsonPath(path)}: ${why}`);
  // Migration walks one package at a time: keep only the last releases.json read.
  let last: { pkg: string; file: Promise<PackageFile | undefined> } | undefined;

  const readPackageFile = (name: PackageName): Promise<PackageFile | undefined> => {
    if (last?.pkg === name.full) return last.file;
    const file = readReleasesFile(join(packagesDir, name.namespace, name.name, 'releases.json'));
    last = { pkg: name.full, file };
    file.catch(() => {
      if (last?.file === file) last = undefined;
    });
    return file;
  };

  const releases = async (pkg: string): Promise<ReleaseSource[]> => {
    const name = packageName(pkg);
    const pf = await readPackageFile(name);
    return pf ? releaseSources(pf, name, storeError) : [];
  };

  return {
    root,
    async packages({ onInvalid } = {}) {
      const file = join(packagesDir, 'packages.json');
      const text = await readText(file);
      if (text === undefined) return [];
      const { json, keys } = parseChecked(text, file, PackagesFile);
      const out: ApprPackage[] = [];
      for (const ns of keys(json.packages)) {
        const names = json.packages[ns]!;
        for (const name of keys(names)) {
          const entry = names[name]!;
          try {
            const parsed = checkedName(() => parsePackageName(ns, name), file, ['packages', ns, name], storeError);
            if (entry.namespace !== undefined && entry.namespace !== ns) throw storeError(file, ['packages', ns, name, 'namespace'], `${JSON.stringify(entry.namespace)} differs from its key`);
            if (entry.name !== undefined && entry.name !== name) throw storeError(file, ['packages', ns, name, 'name'], `${JSON.stringify(entry.name)} differs from its key`);
            out.push({ package: parsed.full, createdAt: entry.created_at });
          } catch (err) {
            if (!onInvalid || !(err instanceof ApprStoreError)) throw err;
            onInvalid(err);
          }
        }
      }
      return out;
    },
    releases,
    async channels(pkg) {
      const name = packageName(pkg);
      const pf = await readPackageFile(name);
      return pf ? channelRecords(pf, releaseSources(pf, name, storeError), storeError) : [];
    },
    async blob(pkg, digestHex) {
      const name = packageName(pkg);
      if (!HEX64.test(digestHex)) throw new ApprStoreError(`invalid CNR digest ${JSON.stringify(digestHex)} for ${pkg}: expected 64 lowercase hex digits`);
      const file = join(packagesDir, name.namespace, name.name, 'digests', 'sha256', digestHex);
      const fail = (why: string) => new ApprBlobError(file, name.full, digestHex, why);
      const recorded = new Set((await releases(pkg)).filter((r) => r.digest === digestHex).map((r) => r.size));
      let text: string | undefined;
      try {
        text = await readText(file);
      } catch (err) {
        throw fail((err as Error).message.replace(`${file}: `, ''));
      }
      if (text === undefined) throw fail('missing');
      const base64 = text.replace(/\s+/g, '');
      // Buffer.from skips what is not base64; a damaged file must not decode to something.
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0) throw fail('not base64 text');
      const bytes = Buffer.from(base64, 'base64');
      for (const size of recorded) if (bytes.length !== size) throw fail(`${bytes.length} bytes, but releases.json records ${size}`);
      let digest: string;
      try {
        digest = (await inspectPackage(bytes, options.maxUnpackedSize === undefined ? {} : { maxUnpackedSize: options.maxUnpackedSize })).digest;
      } catch (err) {
        throw fail((err as Error).message.replace(/^blob /, ''));
      }
      if (digest !== digestHex) throw fail(`content digest is ${digest}`);
      return bytes;
    },
  };
}

/**
 * The (release, media type) pairs of releases.json, in its order, each checked against its
 * keys: a view's release, package and media type must be those it is filed under.
 */
function releaseSources(pf: PackageFile, name: PackageName, storeError: StoreErrorFn): ReleaseSource[] {
  const { file, json, keys } = pf;
  const out: ReleaseSource[] = [];
  for (const release of keys(json.releases)) {
    if (!isRelease(release)) throw storeError(file, ['releases', release], 'not a SemVer 2.0 release');
    const manifests = json.releases[release]!.manifests;
    for (const key of keys(manifests)) {
      const m = manifests[key]!;
      const at = (...field: string[]) => ['releases', release, 'manifests', key, ...field];
      const short = checkedName(() => parseMediaType(key), file, at(), storeError);
      const own = checkedName(() => parseMediaType(m.mediaType), file, at('mediaType'), storeError);
      if (own !== short) throw storeError(file, at('mediaType'), `${JSON.stringify(m.mediaType)} is not the media type ${short} it is filed under`);
      if (m.release !== release) throw storeError(file, at('release'), `${JSON.stringify(m.release)} differs from its key`);
      if (m.package !== name.full) throw storeError(file, at('package'), `${JSON.stringify(m.package)} is not ${name.full}`);
      out.push({ package: name.full, release, mediaType: short, createdAt: m.created_at, metadata: m.metadata ?? null, digest: m.content.digest, size: m.content.size });
    }
  }
  return out;
}

/**
 * Channels as the reference answers them: names and `current` from releases.json's `channels`,
 * members from each release's own `channels` list (a channel no release lists as member is
 * still a channel of its `current`). The reference leaves a channel pointing at a deleted
 * release; here `current` moves to the highest remaining member, as deleting a channel's
 * current release does, and a channel left without members is dropped. Releases with no
 * manifest are not members of anything.
 */
function channelRecords(pf: PackageFile, sources: readonly ReleaseSource[], storeError: StoreErrorFn): ChannelRecord[] {
  const { file, json, keys } = pf;
  const existing = new Set(sources.map((s) => s.release));
  const members = new Map<string, Set<string>>();
  for (const release of keys(json.releases)) {
    if (!existing.has(release)) continue;
    for (const channel of json.releases[release]!.channels ?? []) {
      const set = members.get(channel) ?? new Set<string>();
      set.add(release);
      members.set(channel, set);
    }
  }
  const channels = json.channels ?? {};
  const out: ChannelRecord[] = [];
  for (const key of keys(channels)) {
    const channel = checkedName(() => parseChannelName(key), file, ['channels', key], storeError);
    const entry = channels[key]!;
    if (entry.name !== undefined && entry.name !== key) throw storeError(file, ['channels', key, 'name'], `${JSON.stringify(entry.name)} differs from its key`);
    const releases = new Set(members.get(channel));
    if (existing.has(entry.current)) releases.add(entry.current);
    const ordered = sortDescending(releases);
    const current = existing.has(entry.current) ? entry.current : ordered[0];
    if (current === undefined) continue;
    out.push({ name: channel, current, releases: ordered });
  }
  return out;
}

type StoreErrorFn = (file: string, path: ReadonlyArray<string | number>, why: string) => ApprStoreError;

/** A name check of the model (a CnrError) as a store error naming the file and field. */
function checkedName<T>(check: () => T, file: string, path: ReadonlyArray<string | number>, storeError: StoreErrorFn): T {
  try {
    return check();
  } catch (err) {
    throw storeError(file, path, (err as Error).message);
  }
}

/** A package name given by the caller; refused unless valid, since it becomes a path. */
function packageName(pkg: string): PackageName {
  try {
    return parseFullName(pkg);
  } catch (err) {
    throw new ApprStoreError((err as Error).message);
  }
}

async function readReleasesFile(file: string): Promise<PackageFile | undefined> {
  const text = await readText(file);
  if (text === undefined) return undefined;
  const { json, keys } = parseChecked(text, file, ReleasesFile);
  return { file, json, keys };
}

function parseChecked<T>(text: string, file: string, schema: z.ZodType<T>): { json: T; keys: OrderedJson['keys'] } {
  let parsed: OrderedJson;
  try {
    parsed = parseOrderedJson(text);
  } catch (err) {
    throw new ApprStoreError(`${file}: not valid JSON (${(err as Error).message.split('\n')[0]})`);
  }
  const result = schema.safeParse(parsed.value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ApprStoreError(`${file}: ${formatJsonPath(issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p)))}: ${issue.message}`);
  }
  // The checked value is the parsed one (the schemas only check, never transform), minus keys
  // the schemas do not name: read the parsed objects, whose key order is known.
  return { json: parsed.value as T, keys: parsed.keys };
}

/** A file's text; undefined when it does not exist. */
async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EACCES') throw new ApprStoreError(`${file}: permission denied`);
    if (code === 'EISDIR') throw new ApprStoreError(`${file}: is a directory, expected a file`);
    throw new ApprStoreError(`${file}: cannot read (${code ?? String(err)})`);
  }
}

async function findRoot(dir: string): Promise<string> {
  const abs = resolve(dir);
  const isDir = async (path: string) => (await stat(path).catch(() => undefined))?.isDirectory() === true;
  if (!(await isDir(abs))) throw new ApprStoreError(`${dir}: no such directory`);
  if (await isDir(join(abs, 'packages'))) return abs;
  if (await isDir(join(abs, 'cnr', 'packages'))) return join(abs, 'cnr');
  if (basename(abs) === 'packages' && (await stat(join(abs, 'packages.json')).catch(() => undefined))) return dirname(abs);
  throw new ApprStoreError(`${dir}: not a CNR store (expected packages/packages.json under it)`);
}
