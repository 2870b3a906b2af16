import { z } from 'zod';
import { CnabOciError } from '../oci/errors.js';
import { goJsonString } from '../oci/gojson.js';

/**
 * cosign's signed payload, "simple signing" (sigstore `payload.SimpleContainerImage`):
 * `{"critical":{"identity":{"docker-reference"},"image":{"docker-manifest-digest"},"type"},"optional"}`
 * in Go struct order. cosign signs these exact bytes, so they are written by hand, not re-serialized.
 */

export const SIMPLE_SIGNING_TYPE = 'cosign container image signature';

/** A payload that is not a cosign simple-signing document. */
export class SimpleSigningPayloadError extends CnabOciError {}

/**
 * The payload `cosign sign` writes for an image: `dockerReference` is the repository it was signed
 * in, without tag or digest, as go-containerregistry names it (`index.docker.io/library/x` for
 * Docker Hub). `optional` is `null`: cosign sets it only for `-a key=value` annotations.
 */
export function simpleSigningPayload(dockerReference: string, manifestDigest: string): Uint8Array {
  const json =
    `{"critical":{"identity":{"docker-reference":${goJsonString(dockerReference)}},` +
    `"image":{"docker-manifest-digest":${goJsonString(manifestDigest)}},` +
    `"type":${goJsonString(SIMPLE_SIGNING_TYPE)}},"optional":null}`;
  return Buffer.from(json, 'utf8');
}

// Key names are matched exactly (Go's decoder would also take "Critical"; cosign never writes that).
const PayloadSchema = z.object({
  critical: z.object({
    identity: z.object({ 'docker-reference': z.string() }),
    image: z.object({ 'docker-manifest-digest': z.string() }),
    type: z.string(),
  }),
  // `cosign sign -a k=v` puts annotations here; they are not part of what we check.
  optional: z.record(z.string(), z.unknown()).nullable().optional(),
});

export interface SimpleSigningPayload {
  dockerReference: string;
  manifestDigest: string;
  type: string;
}

export function parseSimpleSigningPayload(bytes: Uint8Array): SimpleSigningPayload {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new SimpleSigningPayloadError('signature payload is not JSON');
  }
  const r = PayloadSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.join('.') ?? '';
    throw new SimpleSigningPayloadError(`signature payload is not a simple-signing payload${where ? ` (at ${where})` : ''}`);
  }
  const { critical } = r.data;
  return {
    dockerReference: critical.identity['docker-reference'],
    manifestDigest: critical.image['docker-manifest-digest'],
    type: critical.type,
  };
}
