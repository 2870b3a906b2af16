import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiscardTarget } from '../content/discard.js';
import { OciLayout } from '../content/layout.js';
import { extractArchive, makeTemporaryDir, removeTemporary, writeTarFile } from '../content/tar.js';
import type { ReadOnlyTarget } from '../content/target.js';
import { isDigest } from '../oci/digest.js';
import { DigestMismatchError, InvalidContentError, NotFoundError } from '../oci/errors.js';
import { parseReference } from '../oci/reference.js';
import type { Descriptor } from '../oci/schemas.js';
import { parseBundle, parseRelocationMap, serializeRelocationMap, type Bundle } from '../cnab/index.js';
import { copyGraph, CopySession, type CopyEvent, type CopyStats } from '../transfer/copy.js';
import type { ImageResolver } from '../transfer/fixup.js';
import { imageSlots, locateImages } from '../cnab/images.js';
import { isAttachedTag } from '../transfer/referrers.js';
import type { OpenedLocation } from './locations.js';
import { pullBundle } from './pull.js';
import { pushBundle, type PushResult } from './push.js';

/**
 * CNAB thick bundles (cnab-spec 104), laid out as Porter writes them: a gzipped tar with
 * `bundle.json` (the canonical bundle) and `relocation-mapping.json` at the root, and the images
 * as an OCI image layout under `artifacts/layout/`. Each image is listed in the layout's
 * index.json under its original reference and under its relocated one (the value of the
 * relocation map, which is what Porter looks images up by).
 */
export const THICK_BUNDLE = {
  bundle: 'bundle.json',
  relocationMap: 'relocation-mapping.json',
  layout: 'artifacts/layout',
} as const;

/** Entry order: small metadata first (a streaming reader finds bundle.json at once), then blobs. */
const ENTRY_ORDER = [
  'bundle.json',
  'relocation-mapping.json',
  'artifacts/',
  'artifacts/layout/',
  'artifacts/layout/oci-layout',
  'artifacts/layout/index.json',
];

export interface ArchiveOptions {
  concurrency?: number;
  /** Tries of one streamed blob transfer (default 3). */
  attempts?: number;
  onEvent?: (event: CopyEvent, image: string | undefined) => void;
  /** Carry signatures, SBOMs and attestations attached to the bundle and its images (default true). */
  referrers?: boolean;
  /** Cancels the operation (AbortedError); nothing half-written is tagged. */
  signal?: AbortSignal;
}

export interface ArchiveResult {
  index: Descriptor;
  bundle: Bundle;
  relocationMap: Record<string, string>;
  images: Array<{ image: string; descriptor: Descriptor }>;
  stats: CopyStats;
  durationMs: number;
}

/**
 * Write a thick bundle of the bundle at `source`: its images are read from the bundle's own
 * repository (the relocation map the index gives), every byte verified. Deterministic: the same
 * bundle archived twice gives the same bytes. Written atomically.
 */
export async function archiveBundle(source: OpenedLocation, file: string, options: ArchiveOptions = {}): Promise<ArchiveResult> {
  const started = performance.now();
  const pulled = await pullBundle(source, { signal: options.signal });
  const located = locateImages(pulled.bundle, pulled.indexDocument);
  const work = await makeTemporaryDir('cnab-oci-thick-');
  try {
    const layout = await OciLayout.open(join(work, ...THICK_BUNDLE.layout.split('/')), { create: true });
    const session = new CopySession(options.concurrency, options.attempts);
    const emit = options.onEvent ?? (() => {});
    const referrers = options.referrers ?? true;
    await Promise.all(located.map((img) => copyGraph(source.target, layout, img.descriptor, { session, referrers, signal: options.signal, onEvent: (e) => emit(e, img.image.image) })));
    // The bundle's own index, for what is attached to it (Porter signs it); its objects are
    // not in the thick bundle, whose bundle.json stands for them.
    if (referrers) await copyGraph(source.target, layout, pulled.index, { session, referrers, attachedOnly: true, signal: options.signal });
    // Tags one at a time, in bundle order, so index.json is the same on every run.
    for (const img of located) {
      const names = [img.image.image, pulled.relocationMap[img.image.image]].filter((n): n is string => Boolean(n));
      for (const name of new Set(names)) await layout.tag(img.descriptor, name);
    }
    // Attached tags were written as their copies finished: put them in one order for every run.
    await layout.sortTags(compareAttachedLast);
    await writeFile(join(work, THICK_BUNDLE.bundle), pulled.bundleBytes, { mode: 0o644 });
    await writeFile(join(work, THICK_BUNDLE.relocationMap), serializeRelocationMap(pulled.relocationMap), { mode: 0o644 });
    await writeTarFile(work, file, { gzip: true, prefix: './', first: ENTRY_ORDER });
    return {
      index: pulled.index,
      bundle: pulled.bundle,
      relocationMap: pulled.relocationMap,
      images: located.map((img) => ({ image: img.image.image, descriptor: img.descriptor })),
      stats: { ...session.stats },
      durationMs: performance.now() - started,
    };
  } finally {
    await removeTemporary(work);
  }
}

export interface ImportOptions extends ArchiveOptions {
  onFallback?: (message: string) => void;
  onWarning?: (message: string) => void;
}

export interface ImportResult extends PushResult {
  /** Blobs checked against their digests before anything was pushed. */
  verifiedBlobs: number;
  durationMs: number;
}

/**
 * Publish a thick bundle (ours or Porter's) into `destination`: extract it safely into a temporary
 * directory, check every blob of the layout against its digest and every image's graph for
 * completeness, and only then push (images first, the bundle index next, the tag last).
 */
export async function importBundle(file: string, destination: OpenedLocation, options: ImportOptions = {}): Promise<ImportResult> {
  const started = performance.now();
  const work = await makeTemporaryDir('cnab-oci-import-');
  try {
    const { bundle, resolver, verifiedBlobs, layout } = await prepareImport(file, work, options).catch((err: unknown) => {
      // Whatever is wrong with the archive is the user's file to fix: exit status 2.
      if (err instanceof InvalidContentError || err instanceof DigestMismatchError) throw new InvalidArchiveError(err.message, { cause: err });
      throw err;
    });
    const result = await pushBundle(bundle, {
      destination,
      resolver,
      concurrency: options.concurrency,
      attempts: options.attempts,
      onEvent: options.onEvent,
      onFallback: options.onFallback,
      referrers: options.referrers,
      signal: options.signal,
      // What was attached to the bundle's index travels in the layout; it applies again when
      // the index pushed has the same digest (the same bundle converted the same way).
      attachmentsFrom: options.referrers === false ? undefined : layout,
    });
    return { ...result, verifiedBlobs, durationMs: performance.now() - started };
  } finally {
    await removeTemporary(work);
  }
}

/** A thick bundle that is not what it should be (unsafe, incomplete, a blob that does not match its digest). */
export class InvalidArchiveError extends InvalidContentError {
  override readonly exitCode: number = 2;
}

/** Extract, parse, verify every blob and check every image graph: nothing is pushed before this succeeds. */
async function prepareImport(file: string, work: string, options: ImportOptions): Promise<{ bundle: Bundle; resolver: ImageResolver; verifiedBlobs: number; layout: OciLayout }> {
  await extractArchive(file, work);
  const bundleBytes = await readFile(join(work, THICK_BUNDLE.bundle)).catch(() => {
    throw new InvalidContentError(`${file}: no ${THICK_BUNDLE.bundle} at the root of the archive (not a CNAB thick bundle)`);
  });
  const { bundle, unknownFields } = parseBundle(bundleBytes, `${file}: ${THICK_BUNDLE.bundle}`);
  if (unknownFields.length > 0) options.onWarning?.(`${file}: bundle.json has unknown top-level field(s) ${unknownFields.join(', ')}; they are dropped`);
  const mapFile = join(work, THICK_BUNDLE.relocationMap);
  const relocationMap = (await stat(mapFile).catch(() => undefined))
    ? parseRelocationMap(await readFile(mapFile), `${file}: ${THICK_BUNDLE.relocationMap}`)
    : {};
  const layoutDir = join(work, ...THICK_BUNDLE.layout.split('/'));
  if (!(await stat(layoutDir).catch(() => undefined))?.isDirectory()) {
    throw new InvalidContentError(`${file}: no ${THICK_BUNDLE.layout}/ directory (a thin bundle? import needs the images in the archive)`);
  }
  const layout = await OciLayout.open(layoutDir, { create: false });
  const resolver = layoutResolver(layout, relocationMap, file, bundle);
  // Every image resolves, and its whole graph (and what is attached to it) is in the layout and
  // matches its digests, before the first push: a copy into nothing that checks every byte.
  const session = new CopySession(options.concurrency);
  const verification = new DiscardTarget();
  for (const { path, image } of imageSlots(bundle)) {
    const what = `${file}: ${path} (${image.image})`;
    const { descriptor } = await resolver.resolve(image.image).catch((err: unknown) => {
      throw err instanceof InvalidContentError ? new InvalidContentError(`${path}: ${err.message}`) : err;
    });
    await copyGraph(layout, verification, descriptor, { session, referrers: options.referrers ?? true, signal: options.signal }).catch((err: unknown) => {
      if (err instanceof NotFoundError) throw new InvalidContentError(`${what}: ${err.message.replace(`${layout.location}: `, '')} is missing from the archive`);
      if (err instanceof DigestMismatchError) throw new InvalidContentError(`${what}: ${err.message.replace(layout.location, THICK_BUNDLE.layout)}`);
      throw err;
    });
  }
  return { bundle, resolver, verifiedBlobs: session.stats.objectsCopied, layout };
}

/** Image tags first, in the order written; then the referrers-schema and cosign tags, by name. */
function compareAttachedLast(a: string | undefined, b: string | undefined): number {
  const attached = (n: string | undefined) => n !== undefined && isAttachedTag(n);
  if (attached(a) !== attached(b)) return attached(a) ? 1 : -1;
  return attached(a) ? a!.localeCompare(b!) : 0;
}



/**
 * Finds a bundle's images in the extracted layout: by the relocation map's value (Porter's
 * naming), by the original reference (full or familiar form), and last by the bundle's
 * contentDigest.
 */
function layoutResolver(layout: OciLayout, relocationMap: Record<string, string>, archive: string, bundle: Bundle): ImageResolver {
  const digests = new Map(imageSlots(bundle).map(({ image }) => [image.image, image.contentDigest]));
  return {
    async resolve(image: string): Promise<{ source: ReadOnlyTarget; descriptor: Descriptor }> {
      const names: string[] = [];
      if (relocationMap[image]) names.push(relocationMap[image]);
      names.push(image);
      try {
        const ref = parseReference(image);
        names.push(ref.toString(), ref.familiar());
      } catch {
        // not a reference: only the exact names above
      }
      const digest = digests.get(image);
      if (digest && isDigest(digest)) names.push(digest);
      for (const name of new Set(names)) {
        try {
          return { source: layout, descriptor: await layout.resolve(name) };
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
        }
      }
      throw new InvalidContentError(`${archive}: image ${image} is not in ${THICK_BUNDLE.layout} (looked for ${[...new Set(names)].join(', ')})`);
    },
  };
}
