import type { Target } from '../content/target.js';
import { fetchBytes } from '../content/read.js';
import { digestOf } from '../oci/digest.js';
import { InvalidContentError, NotFoundError } from '../oci/errors.js';
import { isImageManifest } from '../oci/mediatypes.js';
import { ManifestSchema, type Descriptor } from '../oci/schemas.js';
import { parseJsonAs } from '../util/json.js';
import { classicSignatureManifest, COSIGN_SIGNATURE_ANNOTATION, type SignatureManifest } from './cosign.js';

/** cosign's `.sig` tags over any Target: read what is there, add to it, store the result. */

interface StoredSignatures {
  descriptor: Descriptor;
  manifest: Uint8Array;
  config: Uint8Array;
}

/** The `.sig` manifest and config under `tag`, or undefined when there is none. */
export async function readSignatureTag(target: Target, tag: string): Promise<StoredSignatures | undefined> {
  const descriptor = await target.resolve(tag).catch((err: unknown) => {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  });
  if (!descriptor) return undefined;
  if (!isImageManifest(descriptor.mediaType)) throw new InvalidContentError(`${target.location}:${tag} is not a cosign signature manifest (${descriptor.mediaType})`);
  const manifest = await fetchBytes(target, descriptor);
  const config = await fetchBytes(target, parseJsonAs(manifest, ManifestSchema, `${target.location}:${tag}`).config);
  return { descriptor, manifest, config };
}

/** The manifest's new blobs (payload, config), then the manifest: a signature is never half there. */
export async function storeSignatureManifest(target: Target, built: SignatureManifest): Promise<void> {
  const manifest = parseJsonAs(built.manifest, ManifestSchema, built.manifestDescriptor.digest);
  const named = new Map([manifest.config, ...(manifest.layers ?? [])].map((d) => [d.digest, d]));
  for (const bytes of built.blobs) {
    const desc = named.get(digestOf(bytes));
    if (!desc) throw new InvalidContentError(`${target.location}: a blob of the signature manifest ${built.manifestDescriptor.digest} is not named by it`);
    if (!(await target.exists(desc))) await target.push(desc, bytes);
  }
  await target.push(built.manifestDescriptor, built.manifest);
}

/**
 * Point `tag` at the signatures of `incoming` (already in `target`) without losing those the
 * tag holds now: each signature layer missing there is appended, as a second `cosign sign` would.
 */
export async function mergeSignatureTag(target: Target, tag: string, incoming: Descriptor): Promise<void> {
  const current = await readSignatureTag(target, tag);
  if (!current || current.descriptor.digest === incoming.digest) return target.tag(incoming, tag);
  const theirs = parseJsonAs(await fetchBytes(target, incoming), ManifestSchema, `${target.location}@${incoming.digest}`);
  let merged = { manifest: current.manifest, config: current.config };
  let changed: SignatureManifest | undefined;
  for (const layer of theirs.layers ?? []) {
    const signature = layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
    if (!signature) continue;
    const built = classicSignatureManifest({ payload: await fetchBytes(target, layer), signature }, merged);
    if (!built.added) continue;
    // Only the last round's config is named by the result; every payload is in `target` already.
    changed = built;
    merged = { manifest: built.manifest, config: built.config };
  }
  if (!changed) return;
  await storeSignatureManifest(target, changed);
  await target.tag(changed.manifestDescriptor, tag);
}
