import type { ReadOnlyTarget } from '../content/target.js';
import { MemoryTarget } from '../content/memory.js';
import type { Descriptor } from '../oci/schemas.js';
import { MAX_MANIFEST_SIZE } from '../content/read.js';
import { InputError, throwIfAborted } from '../oci/errors.js';
import { parseReference } from '../oci/reference.js';
import { imageSlots, canonicalBundleBytes, convertBundle, type Bundle, type ConfigMediaTypeChoice, type ConvertedBundle, type IndexMediaTypeChoice } from '../cnab/index.js';
import { ManifestRejectedError } from '../registry/errors.js';
import { fixupBundle, type FieldChange } from '../transfer/fixup.js';
import type { CopyEvent, CopyOptions, CopyStats } from '../transfer/copy.js';
import { copyGraph, CopySession } from '../transfer/copy.js';
import type { ImageResolver } from '../transfer/fixup.js';
import type { OpenedLocation } from './locations.js';

export interface PushOptions {
  destination: OpenedLocation;
  resolver: ImageResolver;
  autoUpdateBundle?: boolean;
  concurrency?: number;
  /** Tries of one streamed blob transfer, restarted from its source after a transient failure (default 3). */
  attempts?: number;
  /** Carry signatures, SBOMs and attestations attached to the images the fixup copies (default true). */
  referrers?: boolean;
  /** Where to find what is attached to the bundle's index (a thick bundle's layout), if anywhere. */
  attachmentsFrom?: ReadOnlyTarget;
  /** Cancels the operation (AbortedError); nothing half-written is tagged. */
  signal?: AbortSignal;
  /** Every copy event, with the original reference of the image it belongs to (undefined: the bundle's own objects). */
  onEvent?: (event: CopyEvent, image: string | undefined) => void;
  /** Told about each media-type fallback taken because the registry refused a type. */
  onFallback?: (message: string) => void;
}

export interface PushResult {
  /** The index (or manifest list) that was pushed and tagged. */
  index: Descriptor;
  /** The bundle as pushed (after the fixup). */
  bundle: Bundle;
  /** The canonical bundle bytes stored in the registry: what `pull` gives back. */
  bundleBytes: Uint8Array;
  relocationMap: Record<string, string>;
  changes: FieldChange[];
  stats: CopyStats;
  configMediaType: ConfigMediaTypeChoice;
  indexMediaType: IndexMediaTypeChoice;
}

/** Config media types in cnab-to-oci's order of preference: a registry that refuses one gets the next. */
const CONFIG_FALLBACKS: ConfigMediaTypeChoice[] = ['cnab', 'oci', 'docker'];

/**
 * Push a bundle: fixup (every image into the bundle's repository), then the config blob,
 * config manifest and index, and the tag last, so the tag never points at incomplete content.
 */
export async function pushBundle(bundle: Bundle, options: PushOptions): Promise<PushResult> {
  const dst = options.destination;
  if (!dst.tag) throw new InputError(`${dst.display}: push needs a tag, not a digest`);
  // pull refuses configs over the manifest limit, so push refuses to publish one (the fixup
  // adds only a few short fields).
  const configSize = canonicalBundleBytes(bundle).length;
  if (configSize > MAX_MANIFEST_SIZE) {
    throw new InputError(`bundle ${JSON.stringify(bundle.name)}: its canonical form is ${configSize} bytes, over the ${MAX_MANIFEST_SIZE}-byte limit for a bundle config`);
  }
  // Every image reference is checked before the first request, so a typo fails fast and alone.
  for (const { image: { image } } of imageSlots(bundle)) {
    try {
      parseReference(image);
    } catch (err) {
      throw new InputError(`image ${JSON.stringify(image)}: ${(err as Error).message}`);
    }
  }
  const session = new CopySession(options.concurrency, options.attempts);
  const fixed = await fixupBundle(bundle, {
    resolver: options.resolver,
    destination: dst.target,
    destinationName: dst.relocationName,
    autoUpdateBundle: options.autoUpdateBundle,
    copy: { session, referrers: options.referrers ?? true, signal: options.signal },
    onImageEvent: options.onEvent,
  });
  const converterMap = converterRelocationMap(fixed.relocationMap, dst);
  // The bundle's own objects are made here and copied like the images: the same skip and verify rules.
  const bundleEvents = options.onEvent && ((e: CopyEvent) => options.onEvent!(e, undefined));
  const made = new MemoryTarget('bundle');
  const publish = async (objects: Array<{ descriptor: Descriptor; bytes: Uint8Array }>, successors?: CopyOptions['successors']) => {
    for (const o of objects) await made.push(o.descriptor, o.bytes);
    await copyGraph(made, dst.target, objects.at(-1)!.descriptor, { session, onEvent: bundleEvents, successors, signal: options.signal });
  };

  let converted: ConvertedBundle | undefined;
  let configMediaType: ConfigMediaTypeChoice = 'cnab';
  for (const choice of CONFIG_FALLBACKS) {
    converted = convertBundle(fixed.bundle, dst.reference, converterMap, { configMediaType: choice, indexMediaType: 'oci' });
    try {
      await publish([converted.config, converted.configManifest]);
      configMediaType = choice;
      break;
    } catch (err) {
      const next = CONFIG_FALLBACKS[CONFIG_FALLBACKS.indexOf(choice) + 1];
      if (!(err instanceof ManifestRejectedError) || !next) throw err;
      options.onFallback?.(`${dst.display}: registry refused the ${choice} config media type; falling back to ${next}`);
    }
  }
  let indexMediaType: IndexMediaTypeChoice = 'oci';
  let index = converted!.index;
  try {
    await publish([index], bundleOwnObjects(index.descriptor, converted!.configManifest.descriptor));
  } catch (err) {
    if (!(err instanceof ManifestRejectedError)) throw err;
    options.onFallback?.(`${dst.display}: registry refused the OCI index; falling back to a Docker manifest list`);
    indexMediaType = 'docker';
    index = convertBundle(fixed.bundle, dst.reference, converterMap, { configMediaType, indexMediaType }).index;
    await publish([index], bundleOwnObjects(index.descriptor, converted!.configManifest.descriptor));
  }
  if (options.attachmentsFrom) {
    await copyGraph(options.attachmentsFrom, dst.target, index.descriptor, { session, onEvent: bundleEvents, referrers: true, attachedOnly: true, signal: options.signal });
  }
  throwIfAborted(options.signal, `push to ${dst.display}`);
  await dst.target.tag(index.descriptor, dst.tag);
  return {
    index: index.descriptor,
    bundle: fixed.bundle,
    bundleBytes: converted!.config.bytes,
    relocationMap: fixed.relocationMap,
    changes: fixed.changes,
    stats: { ...session.stats },
    configMediaType,
    indexMediaType,
  };
}

/** For layouts, relocation values name the directory; the converter wants its stand-in repository. */
export function converterRelocationMap(map: Record<string, string>, dst: OpenedLocation): Record<string, string> {
  if (dst.kind === 'registry') return map;
  return Object.fromEntries(
    Object.entries(map).map(([image, relocated]) => [image, `${dst.reference.name}@${relocated.slice(relocated.lastIndexOf('@') + 1)}`]),
  );
}

/**
 * The children of the bundle's own objects still to copy once its images are there: of the
 * index, only its config manifest (the images, and their attachments, are copied before it);
 * of everything below, all.
 */
export function bundleOwnObjects(index: Descriptor, configManifest: Descriptor): NonNullable<CopyOptions['successors']> {
  return (desc, children) => (desc.digest === index.digest ? children.filter((c) => c.digest === configManifest.digest) : children);
}
