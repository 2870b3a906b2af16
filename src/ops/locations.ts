import { rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ReadOnlyTarget, Target } from '../content/target.js';
import { OciLayout } from '../content/layout.js';
import { parseLocation } from '../content/location.js';
import type { Descriptor } from '../oci/schemas.js';
import { parseReference, Reference } from '../oci/reference.js';
import { InputError, NotFoundError } from '../oci/errors.js';
import { extractArchive, makeTemporaryDir, removeTemporary, writeTarFile } from '../content/tar.js';
import type { RegistryClient } from '../registry/client.js';
import type { ImageResolver } from '../transfer/fixup.js';

/**
 * A place a bundle is written to or read from: a registry repository, an OCI layout directory
 * (`oci:DIR[:TAG]`), or an OCI archive (`oci-archive:FILE[:TAG]`, a tar of a layout as skopeo
 * writes it). An archive is read by extracting it safely into a temporary layout, and written by
 * filling a temporary layout that `finish` turns into the tar file (atomically: the file appears
 * whole or not at all). Open one with `openLocation`, or let `withLocation` run the lifecycle.
 */
export interface OpenedLocation {
  target: Target;
  /** What the user typed, for messages. */
  display: string;
  /** Tag to publish under or to read; undefined when a digest was given. */
  tag?: string;
  digest?: string;
  /** Repository name used in relocation values (`registry/repo`, `oci:DIR` or `oci-archive:FILE`). */
  relocationName: string;
  /** A reference for the converter: the real one for registries, a stand-in for the others. */
  reference: Reference;
  kind: 'registry' | 'layout' | 'archive';
  /** Write the archive file from what was put in, once (nothing to do for the others). */
  finish(): Promise<void>;
  /** Remove the temporary files (an archive's layout): always, after success or failure. */
  dispose(): Promise<void>;
  /** After a failure: remove a layout directory this run created, so nothing is left behind. */
  abandon(): Promise<void>;
}

export interface LocationOptions {
  /** Create a layout directory (or write the archive at `finish`) instead of reading one. */
  create: boolean;
  /**
   * With false, an input that names no tag and no digest leaves `tag` undefined (copy then keeps
   * the source's tag) instead of defaulting to `latest`.
   */
  defaultTag?: boolean;
}

/** Stand-in repository for layouts and archives: the converter only needs relocated images in "the" repository. */
const LOCAL_REFERENCE = new Reference('localhost', 'oci-layout');

const nothing = async (): Promise<void> => {};

export async function openLocation(input: string, client: RegistryClient, options: LocationOptions): Promise<OpenedLocation> {
  const loc = parseLocation(input);
  const named = loc.kind === 'registry' ? Boolean(loc.reference.tag ?? loc.reference.digest) : loc.tag !== undefined;
  const defaultTag = options.defaultTag !== false || named ? 'latest' : undefined;
  if (loc.kind === 'registry') {
    const ref = loc.reference;
    return {
      target: client.repository(ref),
      display: ref.toString(),
      tag: ref.digest ? undefined : (ref.tag ?? defaultTag),
      digest: ref.digest,
      relocationName: ref.name,
      reference: ref,
      kind: 'registry',
      finish: nothing,
      dispose: nothing,
      abandon: nothing,
    };
  }
  const digest = loc.tag && /^sha(256|512):/.test(loc.tag) ? loc.tag : undefined;
  const tag = digest ? undefined : (loc.tag ?? defaultTag);
  if (loc.kind === 'layout') {
    const created = options.create && !(await stat(loc.dir).catch(() => undefined));
    const layout = await OciLayout.open(loc.dir, { create: options.create });
    return {
      target: layout,
      display: `oci:${loc.dir}${loc.tag ? `:${loc.tag}` : ''}`,
      tag,
      digest,
      relocationName: `oci:${loc.dir}`,
      reference: LOCAL_REFERENCE,
      kind: 'layout',
      finish: nothing,
      dispose: nothing,
      abandon: created ? () => rm(loc.dir, { recursive: true, force: true }) : nothing,
    };
  }
  if (options.create && !(await stat(dirname(loc.file)).catch(() => undefined))?.isDirectory()) {
    throw new InputError(`${input}: directory ${dirname(loc.file)} does not exist`);
  }
  const work = await makeTemporaryDir('cnab-oci-oci-archive-');
  const dispose = () => removeTemporary(work);
  let written: Promise<void> | undefined;
  try {
    if (!options.create) await extractArchive(loc.file, work);
    return {
      target: await OciLayout.open(work, { create: options.create }),
      display: `oci-archive:${loc.file}${loc.tag ? `${digest ? '@' : ':'}${loc.tag}` : ''}`,
      tag,
      digest,
      relocationName: `oci-archive:${loc.file}`,
      reference: LOCAL_REFERENCE,
      kind: 'archive',
      // Once: a caller may finish before its own output, and withLocation finishes again.
      finish: options.create ? () => (written ??= writeTarFile(work, loc.file)) : nothing,
      dispose,
      abandon: nothing, // the archive file is only written by finish
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/**
 * Open a location, run `body` with it, write it (`finish`) when `body` succeeds, and always remove
 * its temporary files; after a failure, a layout directory created for this run goes too.
 */
export async function withLocation<T>(input: string, client: RegistryClient, options: LocationOptions, body: (location: OpenedLocation) => Promise<T>): Promise<T> {
  const location = await openLocation(input, client, options);
  try {
    const result = await body(location);
    await location.finish();
    return result;
  } catch (err) {
    await location.abandon();
    throw err;
  } finally {
    await location.dispose();
  }
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
