import type { ReadOnlyTarget, Target } from '../content/target.js';
import { OciLayout } from '../content/layout.js';
import { parseLocation } from '../content/location.js';
import type { Descriptor } from '../oci/schemas.js';
import { parseReference, Reference } from '../oci/reference.js';
import { InputError, NotFoundError } from '../oci/errors.js';
import type { RegistryClient } from '../registry/client.js';
import type { ImageResolver } from '../transfer/fixup.js';

/** A place a bundle is written to or read from: a registry repository or an OCI layout directory. */
export interface OpenedLocation {
  target: Target;
  /** What the user typed, for messages. */
  display: string;
  /** Tag to publish under or to read; undefined when a digest was given. */
  tag?: string;
  digest?: string;
  /** Repository name used in relocation values (`registry/repo` or `oci:DIR`). */
  relocationName: string;
  /** A reference for the converter: the real one for registries, a stand-in for layouts. */
  reference: Reference;
  kind: 'registry' | 'layout';
}

/** Stand-in repository for layouts: the converter only needs relocated images in "the" repository. */
const LAYOUT_REFERENCE = new Reference('localhost', 'oci-layout');

export async function openLocation(input: string, client: RegistryClient, options: { create: boolean }): Promise<OpenedLocation> {
  const loc = parseLocation(input);
  if (loc.kind === 'registry') {
    const ref = loc.reference;
    return {
      target: client.repository(ref),
      display: ref.toString(),
      tag: ref.digest ? undefined : (ref.tag ?? 'latest'),
      digest: ref.digest,
      relocationName: ref.name,
      reference: ref,
      kind: 'registry',
    };
  }
  if (loc.kind === 'layout') {
    const layout = await OciLayout.open(loc.dir, { create: options.create });
    const digest = loc.tag?.includes(':') && /^sha(256|512):/.test(loc.tag) ? loc.tag : undefined;
    return {
      target: layout,
      display: `oci:${loc.dir}${loc.tag ? `:${loc.tag}` : ''}`,
      tag: digest ? undefined : (loc.tag ?? 'latest'),
      digest,
      relocationName: `oci:${loc.dir}`,
      reference: LAYOUT_REFERENCE,
      kind: 'layout',
    };
  }
  throw new InputError(`${input}: archives are not supported here; use oci:DIR or a registry reference`);
}

/**
 * Resolves images named in a bundle: first in the OCI layouts given with --images-from
 * (matched by the full or familiar reference in org.opencontainers.image.ref.name), then in
 * the image's own registry.
 */
export function createImageResolver(client: RegistryClient, layouts: OciLayout[]): ImageResolver {
  return {
    async resolve(image: string): Promise<{ source: ReadOnlyTarget; descriptor: Descriptor }> {
      let ref: Reference;
      try {
        ref = parseReference(image);
      } catch (err) {
        throw new InputError(`image ${JSON.stringify(image)}: ${(err as Error).message}`);
      }
      for (const layout of layouts) {
        // By name first; an image pinned by digest is found by its digest wherever the layout holds it.
        for (const name of new Set([image, ref.toString(), ref.familiar(), ...(ref.digest ? [ref.digest] : [])])) {
          try {
            return { source: layout, descriptor: await layout.resolve(name) };
          } catch (err) {
            if (!(err instanceof NotFoundError)) throw err;
          }
        }
      }
      const repo = client.repository(ref);
      return { source: repo, descriptor: await repo.resolve(ref.reference) };
    },
  };
}
