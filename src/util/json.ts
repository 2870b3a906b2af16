import type { z } from 'zod';
import { InvalidContentError } from '../oci/errors.js';

/** JSON from bytes or text, or undefined when it is not JSON: for readers that treat either the same. */
export function parseJsonOrUndefined(input: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** JSON from bytes that must match `schema`; InvalidContentError naming `what` otherwise. */
export function parseJsonAs<T>(bytes: Uint8Array, schema: z.ZodType<T>, what: string): T {
  const json = parseJsonOrUndefined(bytes);
  if (json === undefined) throw new InvalidContentError(`${what} is not JSON`);
  const r = schema.safeParse(json);
  if (!r.success) throw new InvalidContentError(`${what} is not valid: ${r.error.issues[0]?.message ?? 'schema mismatch'}`);
  return r.data;
}
