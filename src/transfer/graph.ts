import type { Descriptor, Index, Manifest } from '../oci/schemas.js';
import { IndexSchema, ManifestSchema } from '../oci/schemas.js';
import { isImageManifest, isIndex } from '../oci/mediatypes.js';
import { InvalidContentError } from '../oci/errors.js';

/** Parse manifest or index bytes, naming `what` in the error. */
export function parseManifestLike(bytes: Uint8Array, desc: Descriptor, what: string): Manifest | Index {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new InvalidContentError(`${what}: ${desc.digest} is not valid JSON`);
  }
  const schema = isIndex(desc.mediaType) ? IndexSchema : ManifestSchema;
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidContentError(`${what}: ${desc.digest} is not a valid ${desc.mediaType}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  return parsed.data;
}

/** The descriptors a manifest or index points at, in document order (config first for a manifest). */
export function successors(desc: Descriptor, bytes: Uint8Array, what: string): Descriptor[] {
  if (!isImageManifest(desc.mediaType) && !isIndex(desc.mediaType)) return [];
  const doc = parseManifestLike(bytes, desc, what);
  if ('manifests' in doc) return doc.manifests ?? [];
  return [doc.config, ...(doc.layers ?? [])];
}
