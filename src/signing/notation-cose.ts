import { decode, encode, Tagged, type TagDecodeControl } from 'cborg';
import { z } from 'zod';
import { HEADER, NotationEnvelopeError, printable, type NotationEnvelope, type SignatureAlgorithm } from './notation-envelope.js';

/** Notation's COSE envelope: a tagged COSE_Sign1 (RFC 9052 §4.2) with an x5chain (RFC 9360). */

const TAG_SIGN1 = 18;
const TAG_EPOCH_TIME = 1;
const LABEL = { alg: 1, crit: 2, contentType: 3, x5chain: 33 } as const;

const ALGORITHMS: ReadonlyMap<number, SignatureAlgorithm> = new Map([
  [-37, 'PS256'],
  [-38, 'PS384'],
  [-39, 'PS512'],
  [-7, 'ES256'],
  [-35, 'ES384'],
  [-36, 'ES512'],
]);

const bytes = z.instanceof(Uint8Array);
const Label = z.union([z.number().int(), z.string()]);
const HeaderMap = z.map(Label, z.unknown());
type HeaderMap = z.infer<typeof HeaderMap>;

const Sign1Schema = z.tuple([bytes, HeaderMap, bytes.nullable(), bytes]);

const ProtectedSchema = z.object({
  alg: z.number().int(),
  crit: z.array(Label).min(1),
  contentType: z.string(),
  signingScheme: z.string(),
  signingTime: z.number().int().nonnegative().optional(),
  authenticSigningTime: z.number().int().nonnegative().optional(),
  expiry: z.number().int().nonnegative().optional(),
});

const X5ChainSchema = z.union([bytes, z.array(bytes).min(1)]);

/** Times are epoch seconds; newer notation-core-go wraps them in tag 1, older ones do not. */
class EpochTime {
  constructor(readonly seconds: unknown) {}
}

const DECODE_OPTIONS = {
  useMaps: true,
  rejectDuplicateMapKeys: true,
  tags: {
    [TAG_SIGN1]: Tagged.decoder(TAG_SIGN1),
    [TAG_EPOCH_TIME]: (d: TagDecodeControl) => new EpochTime(d()),
  },
};

function cbor(data: Uint8Array, what: string): unknown {
  try {
    return decode(data, DECODE_OPTIONS);
  } catch (err) {
    throw new NotationEnvelopeError(`malformed COSE envelope: ${what}: ${printable((err as Error).message)}`);
  }
}

const epoch = (v: unknown): unknown => (v instanceof EpochTime ? v.seconds : v);
const toDate = (s: number | undefined): Date | undefined => (s === undefined ? undefined : new Date(s * 1000));

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid';
}

function parseProtected(raw: Uint8Array): { map: HeaderMap; header: z.infer<typeof ProtectedSchema> } {
  // An empty bstr would mean "no protected header"; Notation always has one.
  const map = HeaderMap.safeParse(raw.length === 0 ? new Map() : cbor(raw, 'protected header'));
  if (!map.success) throw new NotationEnvelopeError('malformed COSE envelope: protected header is not a map');
  const m = map.data;
  const header = ProtectedSchema.safeParse({
    alg: m.get(LABEL.alg),
    crit: m.get(LABEL.crit),
    contentType: m.get(LABEL.contentType),
    signingScheme: m.get(HEADER.signingScheme),
    signingTime: epoch(m.get(HEADER.signingTime)),
    authenticSigningTime: epoch(m.get(HEADER.authenticSigningTime)),
    expiry: epoch(m.get(HEADER.expiry)),
  });
  if (!header.success) throw new NotationEnvelopeError(`malformed COSE protected header: ${firstIssue(header.error)}`);
  return { map: m, header: header.data };
}

export function parseCoseEnvelope(data: Uint8Array): NotationEnvelope {
  const top = cbor(data, 'envelope');
  if (!(top instanceof Tagged) || top.tag !== TAG_SIGN1) {
    throw new NotationEnvelopeError('malformed COSE envelope: not a tagged COSE_Sign1');
  }
  const sign1 = Sign1Schema.safeParse(top.value);
  if (!sign1.success) throw new NotationEnvelopeError(`malformed COSE_Sign1: ${firstIssue(sign1.error)}`);
  const [protectedBytes, unprotected, payload, signature] = sign1.data;
  if (payload === null || payload.length === 0) throw new NotationEnvelopeError('malformed COSE_Sign1: detached or empty payload');

  const { map, header } = parseProtected(protectedBytes);
  const alg = ALGORITHMS.get(header.alg);
  if (!alg) throw new NotationEnvelopeError(`unsupported signature algorithm ${header.alg}`);

  // Notation puts x5chain in the unprotected bucket; RFC 9360 allows either.
  const x5chain = X5ChainSchema.safeParse(unprotected.get(LABEL.x5chain) ?? map.get(LABEL.x5chain));
  if (!x5chain.success) throw new NotationEnvelopeError('malformed COSE envelope: missing or malformed x5chain');

  return {
    alg,
    crit: header.crit,
    protectedLabels: new Set(map.keys()),
    contentType: header.contentType,
    signingScheme: header.signingScheme,
    signingTime: toDate(header.signingTime),
    authenticSigningTime: toDate(header.authenticSigningTime),
    expiry: toDate(header.expiry),
    certificates: x5chain.data instanceof Uint8Array ? [x5chain.data] : x5chain.data,
    // Sig_structure (RFC 9052 §4.4) over the protected bytes exactly as received, no external_aad.
    signingInput: encode(['Signature1', protectedBytes, new Uint8Array(0), payload]),
    signature,
    payload,
  };
}
