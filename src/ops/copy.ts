import { Readable } from 'node:stream';
import type { ReadOnlyTarget } from '../content/target.js';
import { MemoryTarget } from '../content/memory.js';
import { fetchBytes, MAX_MANIFEST_SIZE } from '../content/read.js';
import type { Descriptor, Index, Platform } from '../oci/schemas.js';
import { MediaType, isIndex, isManifestLike } from '../oci/mediatypes.js';
import { digestOf } from '../oci/digest.js';
import { InputError, throwIfAborted } from '../oci/errors.js';
import { parseReference } from '../oci/reference.js';
import { formatPlatform, platformMatches, type PlatformSpec } from '../oci/platform.js';
import { Annotation, convertBundle, type Bundle, type ConfigMediaTypeChoice, type IndexMediaTypeChoice } from '../cnab/index.js';
import { copyGraph, CopySession, type CopyEvent, type CopyOptions, type CopyStats } from '../transfer/copy.js';
import { imageAt, locateImages, type LocatedImage } from '../cnab/images.js';
import { successors } from '../transfer/graph.js';
import { discoverAttached } from '../transfer/referrers.js';
import type { OpenedLocation } from './locations.js';
import { pullBundle, type PulledBundle } from './pull.js';
import { bundleOwnObjects, converterRelocationMap } from './push.js';


export interface CopyBundleOptions {
  /** Keep only these platforms in multi-arch images (the bundle is re-converted: a new index digest). */
  platforms?: PlatformSpec[];
  /** Tag each image in the destination repository with the tag of its original reference. */
  preserveTags?: boolean;
  concurrency?: number;
  /** Tries of one streamed blob transfer (default 3). */
  attempts?: number;
  /** Every copy event, with the original reference of the image it belongs to (undefined: the bundle's own objects). */
  onEvent?: (event: CopyEvent, image: string | undefined) => void;
  /** Carry signatures, SBOMs and attestations attached to the bundle and its images (default true). */
  referrers?: boolean;
  /** Cancels the operation (AbortedError); nothing half-written is tagged. */
  signal?: AbortSignal;
}

/**
 * Something attached in the source to an index that the copy replaced by a new one (--platform):
 * signatures name the old digest, so nothing in the destination signs the new index.
 */
export interface DetachedAttachments {
  /** The image's original reference, or `bundle` for the bundle's own index. */
  what: string;
  from: Descriptor;
  to: Descriptor;
  /** Referrers and cosign tags the source index had. */
  count: number;
}

export interface FilteredImage {
  path: string;
  image: string;
  from: Descriptor;
  to: Descriptor;
  platforms: string[];
}

export interface CopyBundleResult {
  source: PulledBundle;
  /** The index tagged in the destination: the source's, or a new one when --platform filtered an image. */
  index: Descriptor;
  /** The tag the bundle got in the destination. */
  tag: string;
  bundle: Bundle;
  bundleBytes: Uint8Array;
  /** Original image -> `<destination repository>@<digest>`. */
  relocationMap: Record<string, string>;
  filtered: FilteredImage[];
  /** Image tags written by preserveTags. */
  tags: string[];
  /** Indexes replaced by --platform that had signatures or other attachments in the source. */
  detached: DetachedAttachments[];
  stats: CopyStats;
  durationMs: number;
}

/**
 * Relocate a bundle: every image it names and the bundle index itself, from where the source
 * bundle's index says they are (the bundle's own repository, never the images' original
 * sources) into the destination; one copy session, so each blob moves once, blobs the
 * destination has are skipped and blobs of the same registry are mounted. The tag goes last.
 * A destination without a tag (`dst.tag` undefined) gets the source's tag.
 */
export async function copyBundle(src: OpenedLocation, dst: OpenedLocation, options: CopyBundleOptions = {}): Promise<CopyBundleResult> {
  const started = performance.now();
  if (dst.digest) throw new InputError(`${dst.display}: copy needs a destination tag (or none, to keep the source's), not a digest`);
  const tag = dst.tag ?? src.tag;
  if (!tag) throw new InputError(`${dst.display}: the source ${src.display} is named by digest; give the destination a tag`);
  const pulled = await pullBundle(src, { signal: options.signal });
  const located = locateImages(pulled.bundle, pulled.indexDocument);
  const session = new CopySession(options.concurrency, options.attempts);
  const emit = options.onEvent ?? (() => {});
  const platforms = options.platforms ?? [];
  const referrers = options.referrers ?? true;
  /** A copy of one image's graph (or the bundle's own, image undefined), reporting what it finds. */
  const copy = (from: ReadOnlyTarget, root: Descriptor, image: string | undefined, successors?: CopyOptions['successors']) => {
    return copyGraph(from, dst.target, root, {
      session,
      signal: options.signal,
      referrers,
      successors,
      onEvent: (e: CopyEvent) => emit(e, image),
    });
  };

  // Every filter is decided (and every bad --platform refused) before a byte moves.
  const filters = new Map<string, IndexFilter>();
  if (platforms.length > 0) {
    await Promise.all(located.filter((img) => isIndex(img.descriptor.mediaType)).map(async (img) => {
      const filter = await filterIndex(src.target, img, platforms);
      if (filter) filters.set(img.path, filter);
    }));
  }
  const finalDescriptors = new Map<string, Descriptor>(); // path -> descriptor in the destination
  for (const img of located) finalDescriptors.set(img.path, filters.get(img.path)?.descriptor ?? img.descriptor);
  const wantedTags = options.preserveTags ? imageTags(located, finalDescriptors, tag) : new Map<string, Descriptor>();

  // New objects (filtered indexes, re-converted bundle) live in memory and are copied from there.
  const created = new MemoryTarget('cnab-oci');
  const filtered: FilteredImage[] = [];
  const bundle = structuredClone(pulled.bundle);

  // Unfiltered, the bundle's config goes along with the images: only its index waits for them all.
  const ownConfig = filters.size === 0 ? copy(src.target, pulled.configManifest, undefined) : undefined;
  await Promise.all([ownConfig, ...located.map(async (img) => {
    const filter = filters.get(img.path);
    if (!filter) {
      await copy(src.target, img.descriptor, img.image.image);
      return;
    }
    // The kept manifests from the source (mountable), then the new index over them.
    await Promise.all(filter.kept.map((child) => copy(src.target, child, img.image.image)));
    await created.push(filter.descriptor, filter.bytes);
    await copy(created, filter.descriptor, img.image.image, () => []);
    filtered.push({ path: img.path, image: img.image.image, from: img.descriptor, to: filter.descriptor, platforms: filter.kept.map((k) => formatPlatform(k.platform!)) });
  })]);
  filtered.sort((a, b) => located.findIndex((l) => l.path === a.path) - located.findIndex((l) => l.path === b.path));

  const relocationMap: Record<string, string> = {};
  for (const img of located) relocationMap[img.image.image] = `${dst.relocationName}@${finalDescriptors.get(img.path)!.digest}`;

  let index = pulled.index;
  let bundleBytes = pulled.bundleBytes;
  if (filtered.length === 0) {
    // The source index whole: its images and config are there now (skipped).
    await copy(src.target, pulled.index, undefined);
  } else {
    for (const f of filtered) {
      const slot = imageAt(bundle, located.find((l) => l.path === f.path)!)!;
      slot.contentDigest = f.to.digest;
      slot.size = f.to.size;
    }
    const converterMap = converterRelocationMap(relocationMap, dst);
    const converted = convertBundle(bundle, dst.reference, converterMap, {
      configMediaType: configChoice(pulled.config.mediaType),
      indexMediaType: indexChoice(pulled.index.mediaType),
    });
    for (const blob of [converted.config, converted.configManifest, converted.index]) await created.push(blob.descriptor, blob.bytes);
    await copy(created, converted.index.descriptor, undefined, bundleOwnObjects(converted.index.descriptor, converted.configManifest.descriptor));
    index = converted.index.descriptor;
    bundleBytes = converted.config.bytes;
  }

  const replaced = filtered.map((f) => ({ what: f.image, from: f.from, to: f.to }));
  if (index.digest !== pulled.index.digest) replaced.push({ what: 'bundle', from: pulled.index, to: index });
  const detached = referrers ? await detachedAttachments(src.target, replaced, session) : [];

  const tags: string[] = [];
  for (const [imageTag, desc] of wantedTags) {
    await dst.target.tag(desc, imageTag);
    tags.push(imageTag);
  }
  throwIfAborted(options.signal, `copy to ${dst.display}`);
  await dst.target.tag(index, tag);
  return {
    source: pulled,
    index,
    tag,
    bundle,
    bundleBytes,
    relocationMap,
    filtered,
    tags,
    detached,
    stats: { ...session.stats },
    durationMs: performance.now() - started,
  };
}

async function detachedAttachments(source: ReadOnlyTarget, replaced: Array<Omit<DetachedAttachments, 'count'>>, session: CopySession): Promise<DetachedAttachments[]> {
  const counted = await Promise.all(replaced.map(async (r) => ({ ...r, count: (await discoverAttached(source, r.from, session.tags)).length })));
  return counted.filter((r) => r.count > 0);
}

interface IndexFilter {
  descriptor: Descriptor;
  bytes: Uint8Array;
  kept: Descriptor[];
}

/** The image's index with only the chosen platforms, or undefined when it already has only those. */
async function filterIndex(source: ReadOnlyTarget, img: LocatedImage, platforms: PlatformSpec[]): Promise<IndexFilter | undefined> {
  const what = `${img.path} (${img.image.image})`;
  const bytes = await fetchBytes(source, img.descriptor);
  // Raw JSON, so fields we do not model (annotations, subject, ...) are kept as they are.
  const raw = JSON.parse(Buffer.from(bytes).toString('utf8')) as { manifests?: Descriptor[] };
  const manifests = raw.manifests ?? [];
  const kept = manifests.filter((m) => platformMatches(m.platform, platforms));
  if (kept.length === 0) {
    const have = manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ');
    throw new InputError(`${what}: has none of the platforms ${platforms.map(formatPlatform).join(', ')} (it has ${have || 'no manifests'})`);
  }
  if (kept.length === manifests.length) return undefined;
  const out = new TextEncoder().encode(JSON.stringify({ ...raw, manifests: kept }));
  return { descriptor: { mediaType: img.descriptor.mediaType, digest: digestOf(out), size: out.length }, bytes: out, kept };
}


/** Tag -> image manifest, refusing two images that want the same tag, or the bundle's own tag. */
function imageTags(located: LocatedImage[], descriptors: Map<string, Descriptor>, bundleTag: string | undefined): Map<string, Descriptor> {
  const wanted = new Map<string, { desc: Descriptor; image: string }>();
  for (const img of located) {
    const tag = parseReference(img.image.image).tag;
    if (!tag) continue;
    const desc = descriptors.get(img.path)!;
    const other = wanted.get(tag);
    if (other && other.desc.digest !== desc.digest) {
      throw new InputError(`--preserve-tags: ${other.image} and ${img.image.image} both want the tag ${tag} in the destination repository`);
    }
    if (tag === bundleTag) throw new InputError(`--preserve-tags: ${img.image.image} has the tag ${tag}, which is the bundle's own tag in the destination`);
    wanted.set(tag, { desc, image: img.image.image });
  }
  return new Map([...wanted].map(([tag, { desc }]) => [tag, desc]));
}

function configChoice(mediaType: string): ConfigMediaTypeChoice {
  if (mediaType === MediaType.OciConfig) return 'oci';
  if (mediaType === MediaType.DockerConfig) return 'docker';
  return 'cnab';
}

function indexChoice(mediaType: string): IndexMediaTypeChoice {
  return mediaType === MediaType.DockerManifestList ? 'docker' : 'oci';
}
