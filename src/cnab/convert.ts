import type { Descriptor, Index, Manifest } from '../oci/schemas.js';
import { MediaType } from '../oci/mediatypes.js';
import { digestOf, type Digest } from '../oci/digest.js';
import { InputError } from '../oci/errors.js';
import { parseReference, type Reference } from '../oci/reference.js';
import { goJsonString, marshalDockerManifestList, marshalDockerSchema2Manifest, marshalIndex, marshalManifest } from '../oci/gojson.js';
import type { Bundle } from './bundle.js';
import { imageSlots, type ImageSlot } from './images.js';
import { canonicalBundleBytes, goString, projectMaintainers } from './project.js';
import type { RelocationMap } from './relocation.js';
import { Annotation } from './annotations.js';
export { Annotation, type CnabManifestType } from './annotations.js';

/**
 * Bundle -> OCI graph, as cnab-to-oci's converter/convert.go, converter/types.go and
 * remotes/push.go build it: a config blob (the canonical bundle), a config manifest pointing at
 * it, and an index whose manifests are the config manifest, the invocation images and the
 * components. Pure: no I/O.
 */

/** Config media type: CNAB's own, OCI image config, or Docker config (cnab-to-oci's fallbacks, in order). */
export type ConfigMediaTypeChoice = 'cnab' | 'oci' | 'docker';
/** Top-level media type: OCI index, or cnab-to-oci's Docker manifest list fallback. */
export type IndexMediaTypeChoice = 'oci' | 'docker';

export interface Blob {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

export interface ConvertedBundle {
  config: Blob;
  configManifest: Blob;
  index: Blob;
}

export interface ConvertOptions {
  configMediaType?: ConfigMediaTypeChoice;
  indexMediaType?: IndexMediaTypeChoice;
}


/** cnab-to-oci's value for org.opencontainers.artifactType on the index. */
export const CNAB_ARTIFACT_TYPE = 'application/vnd.cnab.manifest.v1';


const CONFIG_MEDIA_TYPES: Record<ConfigMediaTypeChoice, string> = {
  cnab: MediaType.CnabConfig,
  oci: MediaType.OciConfig,
  docker: MediaType.DockerConfig,
};

const IMAGE_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaType.OciManifest,
  MediaType.DockerManifest,
  MediaType.OciIndex,
  MediaType.DockerManifestList,
]);

export function convertBundle(bundle: Bundle, target: Reference, relocationMap: RelocationMap, options: ConvertOptions = {}): ConvertedBundle {
  const configChoice = options.configMediaType ?? 'cnab';
  const images = imageSlots(bundle);
  if (!images.some((img) => img.kind === 'invocation')) {
    throw new InputError('invocationImages: the bundle has no invocation image');
  }
  // Image errors first: they are the user's to fix, whatever the config media type.
  const imageDescriptors = images.map((img) => imageDescriptor(img, target, relocationMap));

  const config = blob(canonicalBundleBytes(bundle), CONFIG_MEDIA_TYPES[configChoice]);
  const configManifest = configChoice === 'docker' ? dockerConfigManifest(config.descriptor) : ociConfigManifest(config.descriptor);

  const index: Index = {
    schemaVersion: 2,
    manifests: [
      { ...configManifest.descriptor, annotations: { [Annotation.ManifestType]: 'config' } },
      ...imageDescriptors,
    ],
    annotations: indexAnnotations(bundle),
  };
  const indexBlob = options.indexMediaType === 'docker'
    ? blob(utf8(marshalDockerManifestList(index)), MediaType.DockerManifestList)
    : blob(utf8(marshalIndex(index)), MediaType.OciIndex);
  return { config, configManifest, index: indexBlob };
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function blob(bytes: Uint8Array, mediaType: string): Blob {
  return { bytes, descriptor: { mediaType, digest: digestOf(bytes), size: bytes.length } };
}

/** prepareOCIBundleConfig: an OCI manifest with no layers (Go writes the nil slice as null). */
function ociConfigManifest(config: Descriptor): Blob {
  const manifest: Manifest = { schemaVersion: 2, config, layers: null };
  return blob(utf8(marshalManifest(manifest)), MediaType.OciManifest);
}

/** prepareNonOCIBundleConfig: Docker schema 2, the config repeated as the only layer. */
function dockerConfigManifest(config: Descriptor): Blob {
  return blob(utf8(marshalDockerSchema2Manifest(config, [config])), MediaType.DockerManifest);
}

/** makeAnnotations. Keywords and maintainers are annotated when present, even if empty. */
function indexAnnotations(bundle: Bundle): Record<string, string> {
  const annotations: Record<string, string> = {
    [Annotation.RuntimeVersion]: goString(bundle.schemaVersion),
    [Annotation.Title]: goString(bundle.name),
    [Annotation.Version]: goString(bundle.version),
    [Annotation.Description]: goString(bundle.description ?? ''),
    [Annotation.ArtifactType]: CNAB_ARTIFACT_TYPE,
  };
  const maintainers = projectMaintainers(bundle);
  if (maintainers !== null) {
    // json.Marshal([]Maintainer): fields name, email, url in struct order.
    const items = maintainers.map((m) => {
      let s = `{"name":${goJsonString(m.name)}`;
      if (m.email) s += `,"email":${goJsonString(m.email)}`;
      if (m.url) s += `,"url":${goJsonString(m.url)}`;
      return `${s}}`;
    });
    annotations[Annotation.Authors] = `[${items.join(',')}]`;
  }
  if (Array.isArray(bundle.keywords)) {
    annotations[Annotation.Keywords] = `[${bundle.keywords.map((k) => goJsonString(goString(k))).join(',')}]`;
  }
  return annotations;
}

/** makeDescriptor + getMediaType, with errors that name the image. */
function imageDescriptor(slot: ImageSlot, target: Reference, relocationMap: RelocationMap): Descriptor {
  const img = slot.image;
  const what = `${slot.path} (${img.image})`;
  let relocated = relocationMap[img.image];
  if (relocated === undefined) {
    if (!img.contentDigest) {
      throw new InputError(`${what}: not in the relocation map and has no contentDigest, so its place in ${target.name} is unknown`);
    }
    relocated = `${target.name}@${img.contentDigest}`;
  }
  let named: Reference;
  try {
    named = parseReference(relocated);
  } catch (err) {
    throw new InputError(`${what}: relocated image ${JSON.stringify(relocated)} is not a valid reference: ${(err as Error).message}`);
  }
  if (named.name !== target.name) {
    throw new InputError(`${what}: relocated image ${relocated} is not in the target repository ${target.name}`);
  }
  if (!named.digest) {
    throw new InputError(`${what}: relocated image ${relocated} is not a digested reference (repo@sha256:...)`);
  }
  const mediaType = imageMediaType(img, what);
  if (!img.size) throw new InputError(`${what}: size is not set`);
  const annotations: Record<string, string> = slot.kind === 'invocation'
    ? { [Annotation.ManifestType]: 'invocation' }
    : { [Annotation.ManifestType]: 'component', [Annotation.ComponentName]: slot.name };
  // parseReference has validated the digest.
  return { mediaType, digest: named.digest as Digest, size: img.size, annotations };
}

function imageMediaType(img: ImageSlot['image'], what: string): string {
  let mediaType = img.mediaType ?? '';
  if (mediaType === '') {
    switch (img.imageType ?? '') {
      case 'docker': mediaType = MediaType.DockerManifest; break;
      // The CNAB spec makes "oci" the default imageType; cnab-to-oci refuses an empty one.
      case 'oci': case '': mediaType = MediaType.OciManifest; break;
      default: throw new InputError(`${what}: unsupported image type ${JSON.stringify(img.imageType)} (expected docker or oci, or set mediaType)`);
    }
  }
  if (!IMAGE_MEDIA_TYPES.has(mediaType)) {
    throw new InputError(`${what}: unsupported media type ${JSON.stringify(mediaType)} (expected an OCI or Docker manifest or index)`);
  }
  return mediaType;
}
