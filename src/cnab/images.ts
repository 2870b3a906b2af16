import type { Descriptor, Index } from '../oci/schemas.js';
import { compareGoStrings } from '../oci/gojson.js';
import { Annotation } from './annotations.js';
import { formatJsonPath } from './json-text.js';

/**
 * The images of a bundle, one model for every use: the converter, the fixup, relocation and
 * signing. A slot names where an image is and holds the image object itself, so code working on
 * a copy of the bundle can fill in its fields.
 */

/** The fields of a CNAB image (invocation image or component) that conversion and fixup read and fill. */
export interface BundleImage {
  image: string;
  imageType?: string;
  contentDigest?: string;
  size?: number;
  mediaType?: string;
  [key: string]: unknown;
}

/** The part of a bundle that holds images. */
export interface BundleImages {
  invocationImages: BundleImage[];
  images?: Record<string, BundleImage> | null;
}

export type ImageSlot = ({ kind: 'invocation'; index: number } | { kind: 'component'; name: string }) & {
  /** Where it is in the bundle: `invocationImages[0]`, `images.web`. */
  path: string;
  image: BundleImage;
};

/** Every image: invocation images in order, then components by name in Go string order (cnab-to-oci's order). */
export function imageSlots(bundle: BundleImages): ImageSlot[] {
  const slots: ImageSlot[] = bundle.invocationImages.map((image, index) => ({ kind: 'invocation', index, path: formatJsonPath(['invocationImages', index]), image }));
  const images = bundle.images ?? {};
  for (const name of Object.keys(images).sort(compareGoStrings)) {
    slots.push({ kind: 'component', name, path: formatJsonPath(['images', name]), image: images[name]! });
  }
  return slots;
}

/** The image in the same slot of another copy of the bundle. */
export function imageAt(bundle: BundleImages, slot: ImageSlot): BundleImage | undefined {
  return slot.kind === 'invocation' ? bundle.invocationImages[slot.index] : bundle.images?.[slot.name];
}

/** An image slot with the descriptor the bundle's index gives it. */
export type LocatedImage = ImageSlot & { descriptor: Descriptor };

/**
 * Pair each image of the bundle with its descriptor in the bundle index, the way
 * relocationMapFromIndex reads the index (invocation images in order, components by name).
 */
export function locateImages(bundle: BundleImages, index: Index): LocatedImage[] {
  const slots = imageSlots(bundle);
  const located: LocatedImage[] = [];
  let invocation = 0;
  for (const descriptor of index.manifests ?? []) {
    const type = descriptor.annotations?.[Annotation.ManifestType];
    let slot: ImageSlot | undefined;
    if (type === 'invocation') {
      const at = invocation++;
      slot = slots.find((s) => s.kind === 'invocation' && s.index === at);
    } else if (type === 'component') {
      const name = descriptor.annotations?.[Annotation.ComponentName] ?? '';
      slot = slots.find((s) => s.kind === 'component' && s.name === name);
    }
    if (slot) located.push({ ...slot, descriptor });
  }
  return located;
}
