import type { Readable } from 'node:stream';
import type { ReadOnlyTarget } from './target.js';
import type { Descriptor } from '../oci/schemas.js';
import { InvalidContentError } from '../oci/errors.js';

/** Manifests larger than this are refused (the distribution spec's recommended limit). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

/** Read a whole stream into memory, refusing more than `limit` bytes. Only for small content. */
export async function readAll(stream: Readable, limit = MAX_MANIFEST_SIZE): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    total += buf.length;
    if (total > limit) {
      stream.destroy();
      throw new InvalidContentError(`content larger than ${limit} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** Fetch a small object (manifest, index, config) whole, verified against its descriptor. */
export async function fetchBytes(target: ReadOnlyTarget, desc: Descriptor): Promise<Uint8Array> {
  if (desc.size > MAX_MANIFEST_SIZE) {
    throw new InvalidContentError(`${target.location}@${desc.digest}: ${desc.size} bytes is over the ${MAX_MANIFEST_SIZE}-byte limit for manifests and configs`);
  }
  if (target.fetchSmall) return target.fetchSmall(desc);
  return readAll(await target.fetch(desc), desc.size);
}
