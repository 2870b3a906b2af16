import type { Descriptor, Index } from '../oci/schemas.js';
import { MediaType, isImageManifest, isIndex } from '../oci/mediatypes.js';
import { InvalidContentError } from '../oci/errors.js';
import type { Reference } from '../oci/reference.js';
import type { Bundle } from './bundle.js';
import { Annotation } from './convert.js';
import type { RelocationMap } from './relocation.js';

/**
 * The pull side, as cnab-to-oci's remotes/pull.go and converter.GenerateRelocationMap read a
 * bundle index (OCI index or Docker manifest list).
 */

/** Config blob media types a bundle's config manifest may name (cnab-to-oci's three fallbacks). */
export const BUNDLE_CONFIG_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.CnabConfig, MediaType.OciConfig, MediaType.DockerConfig]);

export function isBundleConfigMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && BUNDLE_CONFIG_MEDIA_TYPES.has(mediaType);
}

/**
 * The config manifest's descriptor: the first one annotated io.cnab.manifest.type=config.
 * Like cnab-to-oci (GetBundleConfigManifestDescriptor), there is no guessing when it is absent.
 */
export function findConfigDescriptor(index: Index): Descriptor {
  const found = (index.manifests ?? []).find((d) => d.annotations?.[Annotation.ManifestType] === 'config');
  if (!found) {
    throw new InvalidContentError(`bundle config not found: no manifest in the index is annotated ${Annotation.ManifestType}=config (not a CNAB bundle?)`);
  }
  return found;
}

/**
 * Relocation map from an index: original image -> `<repository>@<digest>`. Invocation
 * descriptors map to the bundle's invocation images in order (cnab-to-oci maps every one to the
 * first); components by their io.cnab.component.name annotation. `repository` given as a
 * string is used verbatim (e.g. `localhost:5000/app`); a Reference gives its full name
 * (`docker.io/library/app`, where cnab-to-oci would write Docker's short form `app`).
 */
export function relocationMapFromIndex(bundle: Bundle, index: Index, repository: Reference | string): RelocationMap {
  const repo = typeof repository === 'string' ? repository : repository.name;
  const map: RelocationMap = {};
  let invocation = 0;
  for (const d of index.manifests ?? []) {
    if (!isImageManifest(d.mediaType) && !isIndex(d.mediaType)) {
      throw new InvalidContentError(`unsupported manifest descriptor ${d.digest} with media type ${JSON.stringify(d.mediaType)}`);
    }
    const type = d.annotations?.[Annotation.ManifestType];
    if (type === undefined) {
      throw new InvalidContentError(`manifest descriptor ${d.digest} has no CNAB descriptor type annotation ${Annotation.ManifestType}`);
    }
    const relocated = `${repo}@${d.digest}`;
    switch (type) {
      case 'config':
        break;
      case 'invocation': {
        const img = bundle.invocationImages[invocation];
        if (!img) throw new InvalidContentError(`unknown invocation image ${d.digest}: the bundle has ${bundle.invocationImages.length} invocation image(s)`);
        map[img.image] = relocated;
        invocation++;
        break;
      }
      case 'component': {
        const name = d.annotations?.[Annotation.ComponentName];
        if (name === undefined) throw new InvalidContentError(`component name missing in descriptor ${d.digest}`);
        const img = bundle.images?.[name];
        if (!img) throw new InvalidContentError(`component ${JSON.stringify(name)} of descriptor ${d.digest} not found in bundle`);
        map[img.image] = relocated;
        break;
      }
      default:
        throw new InvalidContentError(`invalid CNAB descriptor type ${JSON.stringify(type)} in descriptor ${d.digest}`);
    }
  }
  return map;
}
