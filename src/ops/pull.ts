import type { ReadOnlyTarget } from '../content/target.js';
import { fetchBytes } from '../content/read.js';
import type { Descriptor, Index, Manifest } from '../oci/schemas.js';
import { isIndex } from '../oci/mediatypes.js';
import { CnabOciError, InputError, InvalidContentError, throwIfAborted } from '../oci/errors.js';
import { parseManifestLike } from '../transfer/graph.js';
import { findConfigDescriptor, parseBundle, relocationMapFromIndex, type Bundle } from '../cnab/index.js';
import type { Reference } from '../oci/reference.js';
import { locateImages } from '../cnab/images.js';

export interface PulledBundle {
  /** Descriptor of the bundle's index (or manifest list). */
  index: Descriptor;
  indexDocument: Index;
  configManifest: Descriptor;
  config: Descriptor;
  /** The config blob exactly as stored: the canonical bundle. */
  bundleBytes: Uint8Array;
  bundle: Bundle;
  unknownFields: string[];
  relocationMap: Record<string, string>;
}

/** Where a bundle is read from: an OpenedLocation (see ops/locations.ts) is one. */
export interface BundleSource {
  target: ReadOnlyTarget;
  /** The tag to read, when no digest is given. */
  tag?: string;
  digest?: string;
  /** The repository name relocation values are written with (`registry/repo`, `oci:DIR`). */
  relocationName: Reference | string;
}

export interface PullOptions {
  signal?: AbortSignal;
}

/**
 * Read a bundle back: index -> config manifest -> config blob, every byte verified against its
 * digest on the way (cnab-to-oci's pull does not verify), then the bundle is validated.
 */
export async function pullBundle(from: BundleSource, options: PullOptions = {}): Promise<PulledBundle> {
  const { target: source, relocationName: repository } = from;
  const reference = from.digest ?? from.tag;
  if (!reference) throw new InputError(`${source.location}: no tag or digest to read the bundle from`);
  const what = `${source.location}:${reference}`;
  throwIfAborted(options.signal, `pull of ${what}`);
  const index = await source.resolve(reference);
  if (!isIndex(index.mediaType)) {
    throw new InvalidContentError(`${what}: is a ${index.mediaType}, not a CNAB bundle index`);
  }
  const indexDocument = parseManifestLike(await fetchBytes(source, index), index, what) as Index;
  const configManifest = remote(what, () => findConfigDescriptor(indexDocument));
  throwIfAborted(options.signal, `pull of ${what}`);
  const manifest = parseManifestLike(await fetchBytes(source, configManifest), configManifest, `${what} config manifest`) as Manifest;
  const bundleBytes = await fetchBytes(source, manifest.config);
  // A bad bundle in a registry is bad remote content (exit 1), not bad input from the user.
  const { bundle, unknownFields } = remote('', () => parseBundle(bundleBytes, `${what} bundle config ${manifest.config.digest}`));
  const relocationMap = remote(what, () => relocationMapFromIndex(bundle, indexDocument, repository));
  return { index, indexDocument, configManifest, config: manifest.config, bundleBytes, bundle, unknownFields, relocationMap };
}

/** Something of a bundle that is signed, verified or inspected on its own. */
export interface BundleSubject {
  /** `bundle`, or the image's original reference. */
  what: string;
  descriptor: Descriptor;
}

/** The bundle's index, then (with `images`) every image of the bundle as its index lists it. */
export function bundleSubjects(pulled: PulledBundle, images: boolean): BundleSubject[] {
  const subjects: BundleSubject[] = [{ what: 'bundle', descriptor: pulled.index }];
  if (images) for (const img of locateImages(pulled.bundle, pulled.indexDocument)) subjects.push({ what: img.image.image, descriptor: img.descriptor });
  return subjects;
}

/** Run `f`, turning its input and content errors into InvalidContentError prefixed with `what`. */
function remote<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof CnabOciError)) throw err;
    throw new InvalidContentError(what ? `${what}: ${err.message}` : err.message, { cause: err });
  }
}
