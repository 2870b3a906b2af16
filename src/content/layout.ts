import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pipeline as pipelineCb } from 'node:stream';
import type { z } from 'zod';
import type { Target } from './target.js';
import { MAX_MANIFEST_SIZE, readAll } from './read.js';
import { ImageLayoutSchema, IndexSchema, type Descriptor } from '../oci/schemas.js';
import { type Digest, digestOf, isDigest, parseDigest, verifyingStream } from '../oci/digest.js';
import { isManifestLike, MediaType } from '../oci/mediatypes.js';
import { DigestMismatchError, InputError, NotFoundError } from '../oci/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { parseJsonOrUndefined } from '../util/json.js';

/** The annotation an OCI layout uses to name the manifests listed in index.json. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
export const IMAGE_LAYOUT_VERSION = '1.0.0';

const LAYOUT_FILE = 'oci-layout';
const INDEX_FILE = 'index.json';

/** index.json as read: validated, with unknown top-level fields kept so a rewrite does not drop them. */
type IndexFile = Record<string, unknown> & { manifests: Descriptor[] };

/**
 * index.json updates per layout directory, chained so that two tags in one process never
 * read-modify-write over each other (keyed by absolute path: two OciLayout objects may share a dir).
 */
const indexQueues = new Map<string, Promise<void>>();

/**
 * An OCI image layout directory (image-spec `image-layout.md`): `oci-layout`, `index.json`
 * and `blobs/<alg>/<hex>`. Manifests and blobs are both stored as blobs; tags are
 * `org.opencontainers.image.ref.name` annotations on index.json entries.
 */
export class OciLayout implements Target {
  readonly location: string;
  private parsedIndex: { key: string; index: IndexFile } | undefined;
  /** Blob directories known to exist: one mkdir per layout and algorithm, not one per blob. */
  private readonly blobDirs = new Set<string>();
  /** Listed manifest -> the digest its `subject` names (null: none), for listedReferrers. */
  private readonly subjects = new Map<string, string | null>();

  private constructor(readonly dir: string) {
    this.location = `oci:${dir}`;
  }

  /** Open an existing layout, or with `create` make the directory and its two files when missing. */
  static async open(dir: string, options: { create: boolean }): Promise<OciLayout> {
    if (dir === '') throw new InputError('OCI layout directory name is empty');
    const layout = new OciLayout(dir);
    if (options.create) {
      await layout.init();
    } else {
      await layout.check();
    }
    return layout;
  }

  private async check(): Promise<void> {
    const st = await stat(this.dir).catch(() => undefined);
    if (!st) throw new InputError(`${this.dir}: no such OCI layout directory`);
    if (!st.isDirectory()) throw new InputError(`${this.dir}: not a directory, expected an OCI layout`);
    await this.readLayoutFile();
    await this.readIndex();
  }

  private async init(): Promise<void> {
    try {
      await mkdir(join(this.dir, 'blobs'), { recursive: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new InputError(`${this.dir}: cannot create OCI layout directory (${code ?? String(err)})`);
    }
    // 'wx' so that a layout being created by someone else at the same moment is not clobbered.
    await writeIfMissing(join(this.dir, LAYOUT_FILE), JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION }));
    await writeIfMissing(join(this.dir, INDEX_FILE), JSON.stringify({ schemaVersion: 2, manifests: [] }));
    await this.check();
  }

  private async readLayoutFile(): Promise<void> {
    const file = join(this.dir, LAYOUT_FILE);
    const json = await readJsonFile(file, `${this.dir}: not an OCI image layout (no ${LAYOUT_FILE} file)`);
    const parsed = ImageLayoutSchema.safeParse(json);
    if (!parsed.success) throw new InputError(`${file}: ${firstIssue(parsed.error)}`);
    // Layout versions are semver; any 1.x reader can read any 1.x layout.
    if (!parsed.data.imageLayoutVersion.startsWith('1.')) {
      throw new InputError(`${file}: unsupported imageLayoutVersion ${JSON.stringify(parsed.data.imageLayoutVersion)}`);
    }
  }

  private async readIndex(): Promise<IndexFile> {
    const file = join(this.dir, INDEX_FILE);
    // The parse of what this process last wrote is reused while the file is unchanged (a new inode otherwise).
    const st = await stat(file, { bigint: true }).catch(() => undefined);
    const key = st ? `${st.ino}:${st.mtimeNs}:${st.size}` : undefined;
    if (key !== undefined && this.parsedIndex?.key === key) return { ...this.parsedIndex.index, manifests: [...this.parsedIndex.index.manifests] };
    const json = await readJsonFile(file, `${file}: no such file (not an OCI image layout)`);
    const parsed = IndexSchema.safeParse(json);
    if (!parsed.success) throw new InputError(`${file}: not an OCI image index: ${firstIssue(parsed.error)}`);
    // Kept only when this process wrote the file (updateIndex): a reader keeps its own view of it.
    return { ...(json as Record<string, unknown>), manifests: parsed.data.manifests ?? [] };
  }

  /** The manifests and indexes listed in index.json, tagged or not. */
  async list(): Promise<Descriptor[]> {
    return (await this.readIndex()).manifests;
  }

  /**
   * The manifests listed in index.json whose `subject` is `digest`: a layout has no Referrers
   * API, but tools (Notation, oras) list referrers there, tagged or not. Each listed manifest
   * is read once per layout object.
   */
  async listedReferrers(digest: string): Promise<Descriptor[]> {
    const found: Descriptor[] = [];
    for (const listed of await this.list()) {
      if (!isManifestLike(listed.mediaType) || listed.size > MAX_MANIFEST_SIZE) continue;
      let subject = this.subjects.get(listed.digest);
      if (subject === undefined) {
        const bytes = await this.fetchSmall(listed).catch(() => undefined);
        const json = bytes && (parseJsonOrUndefined(bytes) as { subject?: { digest?: unknown } } | null | undefined);
        const named = json?.subject;
        subject = typeof named?.digest === 'string' ? named.digest : null;
        this.subjects.set(listed.digest, subject);
      }
      if (subject !== digest) continue;
      found.push({ mediaType: listed.mediaType, digest: listed.digest, size: listed.size });
    }
    return found;
  }

  blobPath(digest: string): string {
    // parseDigest validates: the hex cannot contain path separators.
    const { algorithm, hex } = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, hex);
  }

  async resolve(reference: string): Promise<Descriptor> {
    const manifests = await this.list();
    if (isDigest(reference)) {
      const listed = manifests.find((m) => m.digest === reference);
      if (listed) return listed;
      const stored = await this.describeStoredManifest(reference);
      if (stored) return stored;
    } else {
      // The last entry wins if a foreign tool left duplicates.
      const tagged = manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] === reference).at(-1);
      if (tagged) return tagged;
    }
    throw new NotFoundError(`${this.location}: ${reference} not found`);
  }

  /** A descriptor for a blob that is a manifest or index but not listed in index.json (a child of an index). */
  private async describeStoredManifest(digest: Digest): Promise<Descriptor | undefined> {
    const st = await stat(this.blobPath(digest)).catch(() => undefined);
    if (!st?.isFile() || st.size > MAX_MANIFEST_SIZE) return undefined;
    const data = await readAll(await this.fetch({ mediaType: 'application/octet-stream', digest, size: st.size }), st.size);
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(data).toString('utf8'));
    } catch {
      return undefined;
    }
    const mediaType = manifestMediaType(json);
    if (!isManifestLike(mediaType)) return undefined;
    return { mediaType: mediaType!, digest, size: st.size };
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    const path = this.blobPath(desc.digest);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${this.location}: blob ${desc.digest} not found`);
      throw err;
    }
    const verify = verifyingStream(desc, `${this.location}@${desc.digest}`);
    // pipeline destroys both ends on error, so a mismatch surfaces on the returned stream.
    return pipelineCb(fh.createReadStream(), verify, () => {});
  }

  /** A small blob read whole and checked against its digest (fetchBytes; manifests, configs). */
  async fetchSmall(desc: Descriptor): Promise<Uint8Array> {
    let data: Buffer;
    try {
      data = await readFile(this.blobPath(desc.digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${this.location}: blob ${desc.digest} not found`);
      throw err;
    }
    const actual = digestOf(data, parseDigest(desc.digest).algorithm);
    if (actual !== desc.digest || data.length !== desc.size) throw new DigestMismatchError(`${this.location}@${desc.digest}`, desc.digest, actual);
    return data;
  }

  async exists(desc: Descriptor): Promise<boolean> {
    const st = await stat(this.blobPath(desc.digest)).catch(() => undefined);
    // A blob of the wrong size is a leftover of some other writer: treat it as absent so push replaces it.
    return st !== undefined && st.isFile() && st.size === desc.size;
  }

  async push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    const final = this.blobPath(desc.digest);
    if (await this.exists(desc)) {
      if (!(content instanceof Uint8Array)) content.destroy();
      return;
    }
    const { algorithm, hex } = parseDigest(desc.digest);
    const dir = join(this.dir, 'blobs', algorithm);
    if (!this.blobDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.blobDirs.add(dir);
    }
    // The temp file sits next to the final path so rename is atomic (same filesystem).
    const tmp = join(dir, `.tmp-${hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
    try {
      // flush: fsync before close, so a crash never leaves a renamed but empty blob.
      if (content instanceof Uint8Array) {
        // Bytes in memory are checked whole and written at once: no stream for a small blob.
        const actual = digestOf(content, algorithm);
        if (actual !== desc.digest || content.length !== desc.size) throw new DigestMismatchError(`${this.location}@${desc.digest}`, desc.digest, actual);
        await writeFile(tmp, content, { flag: 'wx', mode: 0o644, flush: true });
      } else {
        const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true });
        await pipeline(content, verifyingStream(desc, `${this.location}@${desc.digest}`), out);
      }
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async tag(desc: Descriptor, reference: string): Promise<void> {
    await this.tagAll([{ desc, reference }]);
  }

  /** Several tags in one rewrite of index.json: readers see all of them or none. */
  async tagAll(tags: ReadonlyArray<{ desc: Descriptor; reference: string }>): Promise<void> {
    for (const { desc, reference } of tags) {
      if (reference === '') throw new InputError(`${this.location}: empty tag`);
      if (!(await this.exists(desc))) throw new NotFoundError(`${this.location}: cannot tag missing ${desc.digest}`);
    }
    await this.updateIndex((manifests) => {
      let result = manifests;
      for (const { desc, reference } of tags) {
        const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
        if (desc.platform) entry.platform = desc.platform;
        if (desc.artifactType) entry.artifactType = desc.artifactType;
        entry.annotations = { [REF_NAME_ANNOTATION]: reference };
        const same = (m: Descriptor) => m.annotations?.[REF_NAME_ANNOTATION] === reference;
        const at = result.findIndex(same);
        // Replace in place (stable order for diffs), and drop any further duplicates.
        result = at < 0 ? [...result, entry] : result.flatMap((m, i) => (i === at ? [entry] : same(m) ? [] : [m]));
      }
      return result;
    });
  }

  /** Reorder index.json's entries by their tags (a stable sort: equal ones keep their order). */
  async sortTags(compare: (a: string | undefined, b: string | undefined) => number): Promise<void> {
    await this.updateIndex((manifests) => [...manifests].sort((a, b) => compare(a.annotations?.[REF_NAME_ANNOTATION], b.annotations?.[REF_NAME_ANNOTATION])));
  }

  /** Remove a tag from index.json (the content stays: other tags or indexes may share it). */
  async untag(reference: string): Promise<void> {
    await this.updateIndex((manifests) => manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== reference));
  }

  private updateIndex(change: (manifests: Descriptor[]) => Descriptor[]): Promise<void> {
    const key = resolvePath(this.dir);
    const run = (indexQueues.get(key) ?? Promise.resolve()).then(async () => {
      const index = await this.readIndex();
      index.manifests = change(index.manifests);
      const file = join(this.dir, INDEX_FILE);
      await writeFileAtomic(file, JSON.stringify(index));
      // What was just written is the parse of the file now there: the next read need not parse it.
      const st = await stat(file, { bigint: true }).catch(() => undefined);
      if (st) this.parsedIndex = { key: `${st.ino}:${st.mtimeNs}:${st.size}`, index: { ...index, manifests: [...index.manifests] } };
    });
    const tail = run.catch(() => {});
    indexQueues.set(key, tail);
    // Forget the queue once idle so the map does not grow with every directory ever touched.
    void tail.then(() => {
      if (indexQueues.get(key) === tail) indexQueues.delete(key);
    });
    return run;
  }
}

/** The media type of a manifest or index by its own field, or by shape when the field is absent. */
function manifestMediaType(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const obj = json as Record<string, unknown>;
  if (obj.schemaVersion !== 2) return undefined;
  if (typeof obj.mediaType === 'string') return obj.mediaType;
  if (Array.isArray(obj.manifests)) return MediaType.OciIndex;
  if (typeof obj.config === 'object' && obj.config !== null) return MediaType.OciManifest;
  return undefined;
}

async function readJsonFile(file: string, missingMessage: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InputError(missingMessage);
    throw new InputError(`${file}: cannot read (${code ?? String(err)})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: invalid JSON (${(err as Error).message.split('\n')[0]})`);
  }
}

async function writeIfMissing(file: string, data: string): Promise<void> {
  try {
    await writeFile(file, data, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    throw new InputError(`${file}: cannot create (${code ?? String(err)})`);
  }
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  return path ? `${path}: ${issue.message}` : issue.message;
}

