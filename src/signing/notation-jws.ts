import { z } from 'zod';
import { HEADER, isSignatureAlgorithm, NotationEnvelopeError, printable, type NotationEnvelope } from './notation-envelope.js';

/** Notation's JWS envelope: the flattened JSON serialization (RFC 7515 §7.2.2). */

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const b64url = z.string().regex(BASE64URL, 'not base64url');

const JwsSchema = z.object({
  payload: b64url.min(1),
  protected: b64url.min(1),
  header: z.object({
    // x5c is standard base64 DER (RFC 7515 §4.1.6), not base64url.
    x5c: z.array(z.string().regex(BASE64, 'not base64')).min(1),
    [HEADER.signingAgent]: z.string().optional(),
  }),
  signature: b64url.min(1),
});

const rfc3339 = z.iso.datetime({ offset: true });

const ProtectedSchema = z.looseObject({
  alg: z.string(),
  crit: z.array(z.string()).min(1),
  cty: z.string(),
  [HEADER.signingScheme]: z.string(),
  [HEADER.signingTime]: rfc3339.optional(),
  [HEADER.authenticSigningTime]: rfc3339.optional(),
  [HEADER.expiry]: rfc3339.optional(),
});

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid';
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new NotationEnvelopeError(`malformed JWS envelope: ${what} is not JSON`);
  }
}

const toDate = (s: string | undefined): Date | undefined => (s === undefined ? undefined : new Date(s));

export function parseJwsEnvelope(bytes: Uint8Array): NotationEnvelope {
  const outer = JwsSchema.safeParse(parseJson(Buffer.from(bytes).toString('utf8'), 'the envelope'));
  if (!outer.success) throw new NotationEnvelopeError(`malformed JWS envelope: ${firstIssue(outer.error)}`);
  const jws = outer.data;

  const rawHeader = parseJson(Buffer.from(jws.protected, 'base64url').toString('utf8'), 'the protected header');
  const header = ProtectedSchema.safeParse(rawHeader);
  if (!header.success) throw new NotationEnvelopeError(`malformed JWS protected header: ${firstIssue(header.error)}`);
  const h = header.data;
  if (!isSignatureAlgorithm(h.alg)) throw new NotationEnvelopeError(`unsupported signature algorithm ${printable(h.alg)}`);

  return {
    alg: h.alg,
    crit: h.crit,
    protectedLabels: new Set(Object.keys(h)),
    contentType: h.cty,
    signingScheme: h[HEADER.signingScheme],
    signingTime: toDate(h[HEADER.signingTime]),
    authenticSigningTime: toDate(h[HEADER.authenticSigningTime]),
    expiry: toDate(h[HEADER.expiry]),
    certificates: jws.header.x5c.map((c) => Buffer.from(c, 'base64')),
    // JWS signs the encoded strings, not the decoded bytes.
    signingInput: Buffer.from(`${jws.protected}.${jws.payload}`, 'ascii'),
    signature: Buffer.from(jws.signature, 'base64url'),
    payload: Buffer.from(jws.payload, 'base64url'),
  };
}
