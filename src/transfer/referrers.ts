import type { ReadOnlyTarget, Target } from '../content/target.js';
import { fetchBytes } from '../content/read.js';
import { digestOf, referrersTag } from '../oci/digest.js';
import { NotFoundError } from '../oci/errors.js';
import { MediaType, isManifestLike } from '../oci/mediatypes.js';
import { ManifestSchema, type Descriptor } from '../oci/schemas.js';
import { parseManifestLike } from './graph.js';
import { COSIGN_SUFFIXES, cosignTag } from '../signing/cosign.js';
import { mergeSignatureTag } from '../signing/cosign-tags.js';
import { KeyedQueue } from '../util/keyed-queue.js';

/**
 * What is attached to a manifest: OCI 1.1 referrers (manifests whose `subject` names it) and
 * cosign's tags beside it (`sha256-<hex>.sig`, `.att`, `.sbom`, whose manifests have no subject).
 */
export interface Attached {
  descriptor: Descriptor;
  /** The cosign tag it is found under; undefined for a referrer. */
  tag?: string;
}

/** A registry that may answer the OCI 1.1 Referrers API (undefined: it does not). */
interface ReferrersApi {
  referrers(digest: string): Promise<Descriptor[] | undefined>;
}

/** A store that lists referrers among its manifests without an API (an OCI layout's index.json). */
interface ListedReferrers {
  listedReferrers(digest: string): Promise<Descriptor[]>;
}

function hasReferrersApi(t: unknown): t is ReferrersApi {
  return typeof (t as Partial<ReferrersApi>)?.referrers === 'function';
}

function hasListedReferrers(t: unknown): t is ListedReferrers {
  return typeof (t as Partial<ListedReferrers>)?.listedReferrers === 'function';
}

/** A tag of the referrers schema or of cosign (`sha256-<hex>`, `sha256-<hex>.sig`, ...). */
export function isAttachedTag(tag: string): boolean {
  return /^sha(256|512)-[0-9a-f]+(\.(sig|att|sbom))?$/.test(tag);
}

/**
 * Everything attached to `subject` in `source`: the Referrers API where the registry answers
 * it, what a layout lists, and the tag-schema index in every case (a registry that gained the
 * API after clients wrote tag-schema indexes still holds those), then cosign's tags, one entry
 * each (two tags may name one manifest; each is recorded at the destination).
 */
export async function discoverAttached(source: ReadOnlyTarget, subject: Descriptor, tagIndex: TagIndex): Promise<Attached[]> {
  const tag = referrersTag(subject.digest);
  const known = await tagIndex.of(source);
  // With the repository's tag list at hand, only tags that exist are asked for.
  const lookup = (name: string) => (known && !known.has(name) ? Promise.resolve(undefined) : resolveOptional(source, name));
  const [api, listed, tagged, cosign] = await Promise.all([
    hasReferrersApi(source) ? source.referrers(subject.digest) : undefined,
    hasListedReferrers(source) ? source.listedReferrers(subject.digest) : undefined,
    lookup(tag).then(async (index) => (index ? tagSchemaEntries(source, index) : [])),
    Promise.all(COSIGN_SUFFIXES.map(async (suffix) => {
      const name = cosignTag(subject.digest, suffix);
      const found = await lookup(name);
      return found && isManifestLike(found.mediaType) ? { descriptor: found, tag: name } : undefined;
    })),
  ]);
  const referrers = new Map<string, Attached>();
  for (const descriptor of [...(api ?? []), ...(listed ?? []), ...tagged]) {
    if (isManifestLike(descriptor.mediaType) && descriptor.digest !== subject.digest) referrers.set(descriptor.digest, { descriptor });
  }
  // Each cosign tag is its own entry, even when two tags (or a tag and a referrer) name one manifest.
  const tags: Attached[] = cosign.filter((found) => found !== undefined);
  // A stable order: the same source gives the same destination index, whatever answered first.
  const byDigest = (a: Attached, b: Attached) => a.descriptor.digest.localeCompare(b.descriptor.digest);
  return [...[...referrers.values()].sort(byDigest), ...tags];
}

/** A store that can list its tags (a registry repository's tags/list). */
interface TagLister {
  tags(): Promise<string[]>;
}

/**
 * The tags of each source, listed once for one operation (a copy), so that finding what is
 * attached to each of its manifests costs no request when nothing is: one tags/list per
 * repository instead of four lookups per manifest. A source that cannot list (or refuses to)
 * is asked tag by tag.
 */
export class TagIndex {
  private readonly lists = new Map<ReadOnlyTarget, Promise<Set<string> | undefined>>();

  of(source: ReadOnlyTarget): Promise<Set<string> | undefined> {
    let list = this.lists.get(source);
    if (!list) {
      const lister = source as ReadOnlyTarget & Partial<TagLister>;
      list = typeof lister.tags === 'function' ? lister.tags().then((t) => new Set(t), () => undefined) : Promise.resolve(undefined);
      this.lists.set(source, list);
    }
    return list;
  }
}

async function resolveOptional(target: ReadOnlyTarget, reference: string): Promise<Descriptor | undefined> {
  try {
    return await target.resolve(reference);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** The manifests a tag-schema index lists; anything else under that tag is not one. */
async function tagSchemaEntries(source: ReadOnlyTarget, index: Descriptor): Promise<Descriptor[]> {
  if (index.mediaType !== MediaType.OciIndex) return [];
  const doc = parseManifestLike(await fetchBytes(source, index), index, `${source.location} referrers index`);
  return 'manifests' in doc ? (doc.manifests ?? []) : [];
}

/** Serialises the read-modify-write of one tag-schema index by this process. */
const indexUpdates = new KeyedQueue();

/**
 * Make what was attached to `subject` in `source` findable in `destination`, which already holds
 * the content (the subject, the attached manifests): cosign tags keep their names; a referrer
 * needs nothing more where the registry answers the Referrers API, and elsewhere goes into the
 * tag-schema index (its entries described from the manifests in `source`), merged with what is
 * already listed, never dropping an entry.
 */
export async function recordAttached(destination: Target, subject: Descriptor, attached: Attached[], source: ReadOnlyTarget = destination): Promise<void> {
  for (const { descriptor, tag } of attached) {
    if (!tag) continue;
    // Signatures already under a .sig tag at the destination are kept, the source's added.
    if (tag.endsWith('.sig')) await mergeSignatureTag(destination, tag, descriptor);
    else await destination.tag(descriptor, tag);
  }
  const referrers = attached.filter((a) => !a.tag).map((a) => a.descriptor);
  if (referrers.length === 0) return;
  if (hasReferrersApi(destination) && (await destination.referrers(subject.digest)) !== undefined) return;
  const tag = referrersTag(subject.digest);
  await indexUpdates.run(`${destination.location}:${tag}`, () => mergeTagSchemaIndex(destination, tag, referrers, source));
}

async function mergeTagSchemaIndex(destination: Target, tag: string, referrers: Descriptor[], source: ReadOnlyTarget): Promise<void> {
  const current = await resolveOptional(destination, tag);
  const existing = current ? await tagSchemaEntries(destination, current) : [];
  const listed = new Set(existing.map((d) => d.digest));
  const added: Descriptor[] = [];
  for (const referrer of referrers) {
    if (listed.has(referrer.digest)) continue;
    listed.add(referrer.digest);
    added.push(await referrerDescriptor(source, referrer));
  }
  if (added.length === 0) return;
  const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...existing, ...added] }));
  const index: Descriptor = { mediaType: MediaType.OciIndex, digest: digestOf(bytes), size: bytes.length };
  await destination.push(index, bytes);
  await destination.tag(index, tag);
}

/** The descriptor the distribution spec asks for in a referrers list: artifactType and annotations from the manifest. */
async function referrerDescriptor(target: ReadOnlyTarget, referrer: Descriptor): Promise<Descriptor> {
  const doc = parseManifestLike(await fetchBytes(target, referrer), referrer, target.location);
  const config = ManifestSchema.safeParse(doc).data?.config;
  const artifactType = doc.artifactType ?? config?.mediaType;
  const out: Descriptor = { mediaType: referrer.mediaType, digest: referrer.digest, size: referrer.size };
  if (artifactType) out.artifactType = artifactType;
  if (doc.annotations && Object.keys(doc.annotations).length > 0) out.annotations = doc.annotations;
  return out;
}
