import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { DescriptorSchema, ManifestSchema } from '../oci/schemas.js';
import { parseCoseEnvelope } from './notation-cose.js';
import { chainsTo, checkHeaders, NotationEnvelopeError, printable, signatureVerifies, type NotationEnvelope } from './notation-envelope.js';
import { parseJwsEnvelope } from './notation-jws.js';
import { readSignatureLayer, SigningInputError, type BlobReader, type SignatureCheck } from './result.js';

/**
 * Notation signatures (notaryproject.dev): an OCI 1.1 referrer whose single layer is a JWS or
 * COSE envelope over {"targetArtifact": <descriptor of the signed manifest>}. This module checks
 * one such manifest against one certificate; fetching referrers is the caller's business.
 */

export const NOTATION_SIGNATURE_TYPE = 'application/vnd.cncf.notary.signature';
const NOTATION_JWS_MEDIA_TYPE = 'application/jose+json';
const NOTATION_COSE_MEDIA_TYPE = 'application/cose';

/** notation-go reads signature blobs up to 32 MiB; anything bigger is not a signature. */
const MAX_ENVELOPE_BYTES = 32 * 1024 * 1024;

const PARSERS: Record<string, (bytes: Uint8Array) => NotationEnvelope> = {
  [NOTATION_JWS_MEDIA_TYPE]: parseJwsEnvelope,
  [NOTATION_COSE_MEDIA_TYPE]: parseCoseEnvelope,
};

const PayloadSchema = z.object({ targetArtifact: DescriptorSchema });

/** Notation signs as an image manifest with the type in config.mediaType (no artifactType); accept both. */
export function isNotationSignature(manifest: { artifactType?: string | undefined; config: { mediaType: string } }): boolean {
  return manifest.artifactType === NOTATION_SIGNATURE_TYPE || manifest.config.mediaType === NOTATION_SIGNATURE_TYPE;
}

/** A PEM X.509 certificate, the trust anchor a Notation signature is checked against. */
export function loadCertificate(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new SigningInputError(`not an X.509 certificate: ${printable((err as Error).message)}`);
  }
}

export interface NotationExpectation {
  certificate: X509Certificate;
  subject: { digest: string; mediaType?: string; size?: number };
  /** The time a signer-set expiry is compared with; defaults to now. */
  now?: Date;
}

/** "C=US\nO=Notary\nCN=e2e" as one line. */
function subjectLine(cert: X509Certificate): string {
  return printable(cert.subject.split('\n').join(', '));
}

function commonName(cert: X509Certificate): string {
  const cn = cert.subject.split('\n').find((rdn) => rdn.startsWith('CN='));
  return printable(cn ? cn.slice(3) : cert.subject.split('\n').join(', '));
}

function fail(reason: string, signer?: string): SignatureCheck {
  return signer === undefined ? { format: 'notation', ok: false, reason } : { format: 'notation', ok: false, reason, signer };
}

function parseCertificates(der: readonly Uint8Array[]): X509Certificate[] {
  return der.map((d, i) => {
    try {
      return new X509Certificate(d);
    } catch {
      throw new NotationEnvelopeError(`certificate ${i} of the signature's chain is not X.509`);
    }
  });
}

/** Payload checks after the signature holds: what was signed must be what we were asked about. */
function checkPayload(payload: Uint8Array, subject: NotationExpectation['subject']): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return 'signed payload is not JSON';
  }
  const parsed = PayloadSchema.safeParse(json);
  if (!parsed.success) return 'signed payload has no valid targetArtifact';
  const target = parsed.data.targetArtifact;
  if (target.digest !== subject.digest) return `signed payload is for ${target.digest} not ${subject.digest}`;
  if (subject.mediaType !== undefined && target.mediaType !== subject.mediaType) {
    return `signed payload is for media type ${printable(target.mediaType)} not ${printable(subject.mediaType)}`;
  }
  if (subject.size !== undefined && target.size !== subject.size) return `signed payload is for ${target.size} bytes not ${subject.size}`;
  return undefined;
}

/**
 * Verifies one Notation signature manifest. A signature that does not hold yields ok:false with a
 * one-line reason; only the blob reader's own failures (network, digest mismatch) throw.
 *
 * Trust, simpler than Notation's trust policies: the envelope must verify with its leaf
 * certificate, and that leaf must be the given certificate or chain up to it by issuer
 * signatures. Certificate validity periods are NOT checked: the caller pinned this certificate
 * (like `cosign verify --key`), and without a timestamp countersignature an expiry check would
 * only compare with today's clock. A signer-set `io.cncf.notary.expiry` is enforced, since crit
 * makes it binding on whoever claims to understand it.
 */
export async function verifyNotationManifest(manifest: Uint8Array, readBlob: BlobReader, expect: NotationExpectation): Promise<SignatureCheck> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(manifest).toString('utf8'));
  } catch {
    return fail('signature manifest is not JSON');
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) return fail('signature manifest is not an OCI image manifest');
  const m = parsed.data;
  if (!isNotationSignature(m)) return fail(`not a Notation signature (${printable(m.artifactType ?? m.config.mediaType)})`);
  if (!m.subject) return fail('signature manifest has no subject');
  if (m.subject.digest !== expect.subject.digest) return fail(`signature is for ${m.subject.digest} not ${expect.subject.digest}`);

  const layers = m.layers ?? [];
  const layer = layers[0];
  if (layers.length !== 1 || !layer) return fail(`expected one signature envelope layer, found ${layers.length}`);
  const parse = PARSERS[layer.mediaType];
  if (!parse) return fail(`unsupported envelope ${printable(layer.mediaType)}`);
  if (layer.size > MAX_ENVELOPE_BYTES) return fail(`signature envelope of ${layer.size} bytes is too large`);

  const envelope = await readSignatureLayer(layer, readBlob);
  if (!(envelope instanceof Uint8Array)) return fail(envelope.reason);
  let signer: string | undefined;
  try {
    const env = parse(envelope);
    checkHeaders(env);
    const chain = parseCertificates(env.certificates);
    const leaf = chain[0];
    if (!leaf) return fail('signature has no certificate');
    signer = subjectLine(leaf);
    if (!signatureVerifies(env, leaf)) return fail('signature does not verify', signer);
    if (!chainsTo(chain, expect.certificate)) return fail(`signed by ${commonName(leaf)} not by the given certificate`, signer);
    const now = expect.now ?? new Date();
    if (env.expiry && env.expiry.getTime() <= now.getTime()) return fail(`signature expired at ${env.expiry.toISOString()}`, signer);
    const mismatch = checkPayload(env.payload, expect.subject);
    if (mismatch) return fail(mismatch, signer);
    return { format: 'notation', ok: true, signer };
  } catch (err) {
    if (err instanceof NotationEnvelopeError) return fail(err.message, signer);
    throw err;
  }
}

/**
 * Who a Notation envelope says signed it (its leaf certificate's subject), unverified: for
 * listings such as `inspect --referrers`. Undefined when the envelope cannot be read.
 */
export function claimedSigner(envelopeMediaType: string, envelope: Uint8Array): string | undefined {
  try {
    const parse = PARSERS[envelopeMediaType];
    const leaf = parse ? parseCertificates(parse(envelope).certificates)[0] : undefined;
    return leaf ? subjectLine(leaf) : undefined;
  } catch {
    return undefined;
  }
}
