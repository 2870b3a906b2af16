import { Readable } from 'node:stream';
import type { ReadOnlyTarget } from '../content/target.js';
import { MemoryTarget } from '../content/memory.js';
import { fetchBytes } from '../content/read.js';
import type { Descriptor, Index, Platform } from '../oci/schemas.js';
import { MediaType, isIndex } from '../oci/mediatypes.js';
import { digestOf } from '../oci/digest.js';
import { InputError, InvalidContentError, NotFoundError } from '../oci/errors.js';
import { parseReference } from '../oci/reference.js';
import { Annotation, convertBundle, type Bundle, type ConfigMediaTypeChoice, type IndexMediaTypeChoice } from '../cnab/index.js';
import { copyGraph, CopySession, type CopyEvent, type CopyStats } from '../transfer/copy.js';
import type { BundleImage } from '../transfer/fixup.js';
import type { OpenedLocation } from './locations.js';
import { pullBundle, type PulledBundle } from './pull.js';
import { converterRelocationMap } from './push.js';

/** `os/arch[/variant]`, as given to --platform. */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export function parsePlatform(value: string): PlatformSpec {
  const parts = value.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-zA-Z0-9._-]+$/.test(p))) {
    throw new InputError(`--platform ${JSON.stringify(value)}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform | PlatformSpec): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** A platform given without a variant matches every variant of that os/arch. */
export function platformMatches(p: Platform | undefined, specs: PlatformSpec[]): boolean {
  if (!p) return false;
  return specs.some((s) => s.os === p.os && s.architecture === p.architecture && (s.variant === undefined || s.variant === p.variant));
}

/** One image of a bundle with the descriptor its bundle index gives it. */
export interface LocatedImage {
  /** `invocationImages[0]`, `images.web`. */
  path: string;
  image: BundleImage;
  descriptor: Descriptor;
}

/**
 * Pair each image of the bundle with its descriptor in the bundle index, the way
 * relocationMapFromIndex reads the index (invocation images in order, components by name).
 */
export function locateImages(bundle: Bundle, index: Index): LocatedImage[] {
  const located: LocatedImage[] = [];
  let invocation = 0;
  for (const d of index.manifests ?? []) {
    const type = d.annotations?.[Annotation.ManifestType];
    if (type === 'invocation') {
      const image = bundle.invocationImages[invocation];
      if (image) located.push({ path: `invocationImages[${invocation}]`, image: image as BundleImage, descriptor: d });
      invocation++;
    } else if (type === 'component') {
      const name = d.annotations?.[Annotation.ComponentName] ?? '';
      const image = bundle.images?.[name];
      if (image) located.push({ path: `images.${name}`, image: image as BundleImage, descriptor: d });
    }
  }
  return located;
}

export interface CopyBundleOptions {
  /** Keep only these platforms in multi-arch images (the bundle is re-converted: a new index digest). */
  platforms?: PlatformSpec[];
  /** Tag each image in the destination repository with the tag of its original reference. */
  preserveTags?: boolean;
  concurrency?: number;
  /** Every copy event, with the original reference of the image it belongs to (undefined: the bundle's own objects). */
  onEvent?: (event: CopyEvent, image: string | undefined) => void;
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
  bundle: Bundle;
  bundleBytes: Uint8Array;
  /** Original image -> `<destination repository>@<digest>`. */
  relocationMap: Record<string, string>;
  filtered: FilteredImage[];
  /** Image tags written by preserveTags. */
  tags: string[];
  stats: CopyStats;
  durationMs: number;
}

/**
 * Relocate a bundle: every image it names and the bundle index itself, from where the source
 * bundle's index says they are (the bundle's own repository, never the images' original
 * sources) into the destination; one copy session, so each blob moves once, blobs the
 * destination has are skipped and blobs of the same registry are mounted. The tag goes last.
 */
export async function copyBundle(src: OpenedLocation, dst: OpenedLocation, options: CopyBundleOptions = {}): Promise<CopyBundleResult> {
  const started = performance.now();
  if (dst.digest) throw new InputError(`${dst.display}: copy needs a destination tag (or none, to keep the source's), not a digest`);
  const pulled = await pullBundle(src.target, src.digest ?? src.tag!, src.relocationName);
  const located = locateImages(pulled.bundle, pulled.indexDocument);
  const session = new CopySession(options.concurrency);
  const emit = options.onEvent ?? (() => {});
  const copyOpts = (image: string | undefined) => ({ session, onEvent: (e: CopyEvent) => emit(e, image) });
  const platforms = options.platforms ?? [];

  // New objects (filtered indexes, re-converted bundle) live in memory and are copied from there.
  const created = new MemoryTarget('cnab-oci');
  const filtered: FilteredImage[] = [];
  const bundle = structuredClone(pulled.bundle);
  const finalDescriptors = new Map<string, Descriptor>(); // path -> descriptor in the destination

  await Promise.all(located.map(async (img) => {
    const filter = platforms.length > 0 && isIndex(img.descriptor.mediaType)
      ? await filterIndex(src.target, img, platforms)
      : undefined;
    if (!filter) {
      await copyGraph(src.target, dst.target, img.descriptor, copyOpts(img.image.image));
      finalDescriptors.set(img.path, img.descriptor);
      return;
    }
    await Promise.all(filter.kept.map((child) => copyGraph(src.target, dst.target, child, copyOpts(img.image.image))));
    await created.push(filter.descriptor, filter.bytes);
    await copyGraph(created, dst.target, filter.descriptor, copyOpts(img.image.image));
    finalDescriptors.set(img.path, filter.descriptor);
    filtered.push({ path: img.path, image: img.image.image, from: img.descriptor, to: filter.descriptor, platforms: filter.kept.map((k) => formatPlatform(k.platform!)) });
  }));

  const relocationMap: Record<string, string> = {};
  for (const img of located) relocationMap[img.image.image] = `${dst.relocationName}@${finalDescriptors.get(img.path)!.digest}`;

  let index = pulled.index;
  let bundleBytes = pulled.bundleBytes;
  if (filtered.length === 0) {
    // The source index whole: its images are already there (skipped), its config comes along.
    await copyGraph(src.target, dst.target, pulled.index, copyOpts(undefined));
  } else {
    for (const f of filtered) {
      const slot = bundleSlot(bundle, f.path);
      slot.contentDigest = f.to.digest;
      slot.size = f.to.size;
    }
    const converterMap = converterRelocationMap(relocationMap, dst);
    const converted = convertBundle(bundle, dst.reference, converterMap, {
      configMediaType: configChoice(pulled.config.mediaType),
      indexMediaType: indexChoice(pulled.index.mediaType),
    });
    for (const blob of [converted.config, converted.configManifest, converted.index]) await created.push(blob.descriptor, blob.bytes);
    await copyGraph(layered(created, src.target), dst.target, converted.index.descriptor, copyOpts(undefined));
    index = converted.index.descriptor;
    bundleBytes = converted.config.bytes;
  }

  const tags: string[] = [];
  if (options.preserveTags) {
    const wanted = imageTags(located, finalDescriptors, dst.tag);
    for (const [tag, desc] of wanted) {
      await dst.target.tag(desc, tag);
      tags.push(tag);
    }
  }
  await dst.target.tag(index, dst.tag!);
  return {
    source: pulled,
    index,
    bundle,
    bundleBytes,
    relocationMap,
    filtered,
    tags,
    stats: { ...session.stats },
    durationMs: performance.now() - started,
  };
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

function bundleSlot(bundle: Bundle, path: string): BundleImage {
  const inv = /^invocationImages\[(\d+)\]$/.exec(path);
  const slot = inv ? bundle.invocationImages[Number(inv[1])] : bundle.images?.[path.slice('images.'.length)];
  if (!slot) throw new InvalidContentError(`bundle has no image at ${path}`);
  return slot as BundleImage;
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

/** Objects of `top` first, then `base`: a new index over content that is still in the source. */
function layered(top: MemoryTarget, base: ReadOnlyTarget): ReadOnlyTarget {
  return {
    location: base.location,
    resolve: (reference) => top.resolve(reference).catch((err) => {
      if (err instanceof NotFoundError) return base.resolve(reference);
      throw err;
    }),
    fetch: async (desc) => ((await top.exists(desc)) ? Readable.from([top.get(desc)]) : base.fetch(desc)),
    exists: async (desc) => (await top.exists(desc)) || base.exists(desc),
  };
}
