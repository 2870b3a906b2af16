import type { ReadOnlyTarget, Target } from '../content/target.js';
import type { Descriptor } from '../oci/schemas.js';
import { InputError } from '../oci/errors.js';
import { imageSlots, type BundleImage, type BundleImages } from '../cnab/images.js';
import { copyGraph, CopySession, type CopyEvent, type CopyOptions, type CopyStats } from './copy.js';

/** Finds an image named in a bundle: where its content is and the descriptor of its manifest or index. */
export interface ImageResolver {
  resolve(image: string): Promise<{ source: ReadOnlyTarget; descriptor: Descriptor }>;
}

export interface FixupOptions {
  resolver: ImageResolver;
  /** The bundle's repository: every image is made present here. */
  destination: Target;
  /** Name used in relocation values: `<destinationName>@<digest>`. */
  destinationName: string;
  /** Take contentDigest/size/mediaType from the source even when the bundle says otherwise. */
  autoUpdateBundle?: boolean;
  /** How the images are copied; `onEvent` there gets no image: use `onImageEvent`. */
  copy?: CopyOptions;
  /** Every copy event, with the original reference of the image it belongs to. */
  onImageEvent?: (event: CopyEvent, image: string) => void;
}

export interface FieldChange {
  /** Where in the bundle, e.g. `invocationImages[0]` or `images.web`. */
  path: string;
  image: string;
  field: 'contentDigest' | 'size' | 'mediaType';
  from: string | number | undefined;
  to: string | number;
}

export interface FixupResult<B extends BundleImages> {
  bundle: B;
  relocationMap: Record<string, string>;
  changes: FieldChange[];
  stats: CopyStats;
}


/**
 * cnab-to-oci's fixup: resolve every image the bundle names, copy it (mount when possible) into
 * the bundle's repository, and reconcile the bundle's contentDigest/size/mediaType with what was
 * found. Empty values are filled and reported; a differing value is an error unless
 * `autoUpdateBundle` (cnab-to-oci refuses even empty ones; filling them is what users expect).
 * Returns an updated copy of the bundle; the input is not modified.
 */
export async function fixupBundle<B extends BundleImages>(bundle: B, options: FixupOptions): Promise<FixupResult<B>> {
  const updated = structuredClone(bundle);
  const session = options.copy?.session ?? new CopySession(options.copy?.concurrency);
  const changes: FieldChange[] = [];
  const relocationMap: Record<string, string> = {};
  const slots = imageSlots(updated);

  // Resolve and reconcile every image first: a bad bundle fails before anything is copied.
  const resolved = await Promise.all(
    slots.map(async ({ path, image }) => {
      const found = await options.resolver.resolve(image.image);
      reconcile(path, image, found.descriptor, options.autoUpdateBundle ?? false, changes);
      return found;
    }),
  );
  await Promise.all(
    resolved.map(({ source, descriptor }, i) => {
      const image = slots[i]!.image.image;
      const onImageEvent = options.onImageEvent;
      const onEvent = onImageEvent ? (e: CopyEvent) => onImageEvent(e, image) : options.copy?.onEvent;
      return copyGraph(source, options.destination, descriptor, { ...options.copy, session, onEvent });
    }),
  );
  slots.forEach(({ image }, i) => {
    relocationMap[image.image] = `${options.destinationName}@${resolved[i]!.descriptor.digest}`;
  });
  return { bundle: updated, relocationMap, changes, stats: { ...session.stats } };
}

function reconcile(path: string, image: BundleImage, found: Descriptor, autoUpdate: boolean, changes: FieldChange[]): void {
  const actual = { contentDigest: found.digest, size: found.size, mediaType: found.mediaType } as const;
  for (const field of ['contentDigest', 'size', 'mediaType'] as const) {
    const declared = image[field];
    const isEmpty = declared === undefined || declared === '' || declared === 0;
    if (declared === actual[field]) continue;
    if (!isEmpty && !autoUpdate) {
      throw new InputError(
        `${path} (${image.image}): ${field} in the bundle is ${JSON.stringify(declared)} but the image has ${JSON.stringify(actual[field])}; fix the bundle or pass --auto-update-bundle`,
      );
    }
    changes.push({ path, image: image.image, field, from: isEmpty ? undefined : declared, to: actual[field] });
    (image as Record<string, unknown>)[field] = actual[field];
  }
}
