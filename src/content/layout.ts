import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Target } from './target.js';
import { MAX_MANIFEST_SIZE, readAll } from './read.js';
import { LayoutBlobs } from './layout-blobs.js';
import { INDEX_FILE, LayoutIndex } from './layout-index.js';
import { firstIssue, readJsonFile, writeIfMissing } from './layout-json.js';
import { ImageLayoutSchema, type Descriptor } from '../oci/schemas.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { isManifestLike, MediaType } from '../oci/mediatypes.js';
import { InputError, NotFoundError } from '../oci/errors.js';
import { parseJsonOrUndefined } from '../util/json.js';

/** The annotation an OCI layout uses to name the manifests listed in index.json. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
export const IMAGE_LAYOUT_VERSION = '1.0.0';

const LAYOUT_FILE = 'oci-layout';

/**
 * An OCI image layout directory (image-spec `image-layout.md`): `oci-layout`, `index.json`
 * and `blobs/<alg>/<hex>`. Manifests and blobs are both stored as blobs; tags are
 * `org.opencontainers.image.ref.name` annotations on index.json entries.
 */
export class OciLayout implements Target {
  readonly location: string;
  private readonly index: LayoutIndex;
  private readonly blobs: LayoutBlobs;
  /** Listed manifest -> the digest its `subject` names (null: none), for listedReferrers. */
  private readonly subjects = new Map<string, string | null>();

  private constructor(readonly dir: string) {
    this.location = `oci:${dir}`;
    this.index = new LayoutIndex(dir);
    this.blobs = new LayoutBlobs(dir, this.location);
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
    await this.index.read();
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

  /** The manifests and indexes listed in index.json, tagged or not. */
  async list(): Promise<Descriptor[]> {
    return (await this.index.read()).manifests;
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
    return this.blobs.path(digest);
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

  fetch(desc: Descriptor): Promise<Readable> {
    return this.blobs.fetch(desc);
  }

  /** A small blob read whole and checked against its digest (fetchBytes; manifests, configs). */
  fetchSmall(desc: Descriptor): Promise<Uint8Array> {
    return this.blobs.fetchSmall(desc);
  }

  exists(desc: Descriptor): Promise<boolean> {
    return this.blobs.exists(desc);
  }

  push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    return this.blobs.push(desc, content);
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
    await this.index.update((manifests) => {
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
    await this.index.update((manifests) => [...manifests].sort((a, b) => compare(a.annotations?.[REF_NAME_ANNOTATION], b.annotations?.[REF_NAME_ANNOTATION])));
  }

  /** Remove a tag from index.json (the content stays: other tags or indexes may share it). */
  async untag(reference: string): Promise<void> {
    await this.index.update((manifests) => manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== reference));
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
