import { constants, verify, type X509Certificate } from 'node:crypto';
import { CnabOciError } from '../oci/errors.js';

/**
 * What the JWS and COSE parsers hand over: the same Notation signature, whatever its encoding.
 * Everything here comes from an untrusted envelope; nothing in it has been checked yet.
 */
export interface NotationEnvelope {
  alg: SignatureAlgorithm;
  /** The `crit` list as written (COSE allows integer labels). */
  crit: readonly (string | number)[];
  /** Every label of the protected header, to check that each critical one is present. */
  protectedLabels: ReadonlySet<string | number>;
  contentType: string;
  signingScheme: string;
  signingTime?: Date;
  authenticSigningTime?: Date;
  expiry?: Date;
  /** x5c / x5chain as DER, leaf first. */
  certificates: readonly Uint8Array[];
  /** The exact bytes the signature covers. */
  signingInput: Uint8Array;
  /** RSASSA-PSS bytes, or ECDSA as raw r||s (both JWS and COSE use that form). */
  signature: Uint8Array;
  payload: Uint8Array;
}

/** A signature envelope that cannot be read or breaks a Notation rule; its message is the reason. */
export class NotationEnvelopeError extends CnabOciError {}

const SIGNATURE_ALGORITHMS = ['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

export function isSignatureAlgorithm(value: string): value is SignatureAlgorithm {
  return (SIGNATURE_ALGORITHMS as readonly string[]).includes(value);
}

const PAYLOAD_MEDIA_TYPE = 'application/vnd.cncf.notary.payload.v1+json';

export const HEADER = {
  signingScheme: 'io.cncf.notary.signingScheme',
  signingTime: 'io.cncf.notary.signingTime',
  authenticSigningTime: 'io.cncf.notary.authenticSigningTime',
  expiry: 'io.cncf.notary.expiry',
  signingAgent: 'io.cncf.notary.signingAgent',
} as const;

const SCHEME_X509 = 'notary.x509';
const SCHEME_SIGNING_AUTHORITY = 'notary.x509.signingAuthority';

/**
 * The critical headers we honour. verificationPlugin(MinVersion) is left out on purpose: it asks
 * for a plugin to run, which we cannot, so a signature naming it must not pass here.
 */
const UNDERSTOOD_CRITICAL: ReadonlySet<string | number> = new Set([HEADER.signingScheme, HEADER.authenticSigningTime, HEADER.expiry]);

/** Untrusted text in a one-line reason: no control characters, bounded length. */
export function printable(value: unknown): string {
  const s = String(value).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/**
 * The two-way crit check notation-core-go makes: every critical label is present and understood,
 * and the headers Notation requires to be critical are marked so.
 */
export function checkHeaders(env: NotationEnvelope): void {
  for (const label of env.crit) {
    if (!UNDERSTOOD_CRITICAL.has(label)) throw new NotationEnvelopeError(`critical header ${printable(label)} is not understood`);
    if (!env.protectedLabels.has(label)) throw new NotationEnvelopeError(`critical header ${printable(label)} is missing`);
  }
  const mustBeCritical: string[] = [HEADER.signingScheme];
  if (env.expiry) mustBeCritical.push(HEADER.expiry);
  if (env.signingScheme === SCHEME_SIGNING_AUTHORITY) mustBeCritical.push(HEADER.authenticSigningTime);
  for (const label of mustBeCritical) {
    if (!env.crit.includes(label)) throw new NotationEnvelopeError(`header ${label} must be critical`);
  }
  if (env.signingScheme === SCHEME_X509) {
    if (!env.signingTime) throw new NotationEnvelopeError(`missing ${HEADER.signingTime}`);
  } else if (env.signingScheme === SCHEME_SIGNING_AUTHORITY) {
    if (!env.authenticSigningTime) throw new NotationEnvelopeError(`missing ${HEADER.authenticSigningTime}`);
  } else {
    throw new NotationEnvelopeError(`unsupported signing scheme ${printable(env.signingScheme)}`);
  }
  if (env.contentType !== PAYLOAD_MEDIA_TYPE) throw new NotationEnvelopeError(`unsupported payload type ${printable(env.contentType)}`);
}

const HASH: Record<SignatureAlgorithm, { name: string; bytes: number }> = {
  PS256: { name: 'sha256', bytes: 32 },
  PS384: { name: 'sha384', bytes: 48 },
  PS512: { name: 'sha512', bytes: 64 },
  ES256: { name: 'sha256', bytes: 32 },
  ES384: { name: 'sha384', bytes: 48 },
  ES512: { name: 'sha512', bytes: 64 },
};

const RSA_ALG: Record<number, SignatureAlgorithm> = { 2048: 'PS256', 3072: 'PS384', 4096: 'PS512' };
const EC_ALG: Record<string, SignatureAlgorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

/**
 * Notation ties the algorithm to the signing key (RSA 2048 → PS256, P-384 → ES384, ...) and
 * refuses any other pairing; doing the same keeps a PS256 signature from a 4096-bit key out.
 */
function algorithmFor(leaf: X509Certificate): { alg?: SignatureAlgorithm; key: string } {
  const key = leaf.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' && details.modulusLength !== undefined) {
    return { alg: RSA_ALG[details.modulusLength], key: `RSA ${details.modulusLength}` };
  }
  if (key.asymmetricKeyType === 'ec' && details.namedCurve !== undefined) {
    return { alg: EC_ALG[details.namedCurve], key: `EC ${details.namedCurve}` };
  }
  return { key: key.asymmetricKeyType ?? 'unknown' };
}

/** Checks the signature over signingInput with the leaf's key; false on any mismatch. */
export function signatureVerifies(env: NotationEnvelope, leaf: X509Certificate): boolean {
  const expected = algorithmFor(leaf);
  if (expected.alg !== env.alg) {
    throw new NotationEnvelopeError(`${env.alg} does not match the ${expected.key} signing key`);
  }
  const hash = HASH[env.alg];
  const key = env.alg.startsWith('PS')
    ? { key: leaf.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hash.bytes }
    : { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' as const };
  try {
    return verify(hash.name, env.signingInput, key, env.signature);
  } catch {
    // OpenSSL rejects some malformed signatures (wrong length) by throwing: still just "no".
    return false;
  }
}

function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return issuer.ca && child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false; // e.g. an RSA-signed child against an EC issuer key
  }
}

/**
 * Whether `anchor` vouches for the chain: the leaf is the anchor itself, or the chain climbs by
 * valid issuer signatures (leaf, intermediates...) to a certificate the anchor is or has issued.
 * Validity periods are not checked (see verifyNotationManifest).
 */
export function chainsTo(chain: readonly X509Certificate[], anchor: X509Certificate): boolean {
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    if (cert.raw.equals(anchor.raw) || issuedBy(cert, anchor)) return true;
    const next = chain[i + 1];
    if (!next || !issuedBy(cert, next)) return false;
  }
  return false;
}
