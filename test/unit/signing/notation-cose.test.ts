import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode, Tagged } from 'cborg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyNotationManifest } from '../../../src/signing/notation.js';
import { makeCert, PAYLOAD, rawSign, signatureManifest, SUBJECT, type Alg, type TestCert } from './notation-helpers.js';

/**
 * There is no real Notation COSE vector, so these build COSE_Sign1 envelopes with openssl
 * certificates, node:crypto and cborg, and write the Sig_structure out byte by byte rather than
 * through any code the module under test shares.
 */

const COSE_ALG: Record<Alg, number> = { PS256: -37, PS384: -38, PS512: -39, ES256: -7, ES384: -35, ES512: -36 };
const SCHEME = 'io.cncf.notary.signingScheme';

/** A CBOR head (RFC 8949 §3): major type and length, shortest form. */
function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
  if (length < 0x10000) return Buffer.from([(major << 5) | 25, length >> 8, length & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(length, 1);
  return b;
}
const bstr = (b: Uint8Array): Buffer => Buffer.concat([head(2, b.length), b]);

/** ["Signature1", protected, h'', payload]: array(4), tstr(10), bstr, empty bstr, bstr. */
function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0x84]), head(3, 10), Buffer.from('Signature1'), bstr(protectedBytes), Buffer.from([0x40]), bstr(payload)]);
}

interface CoseOptions {
  alg?: Alg;
  crit?: (string | number)[];
  extraProtected?: [string | number, unknown][];
  x5chain?: Uint8Array | Uint8Array[];
  payload?: Uint8Array;
  tag?: boolean;
  tamper?: 'payload' | 'signature';
}

function coseEnvelope(signer: TestCert, alg: Alg, opts: CoseOptions = {}): Uint8Array {
  const protectedBytes = encode(
    new Map<string | number, unknown>([
      [1, COSE_ALG[opts.alg ?? alg]],
      [2, opts.crit ?? [SCHEME]],
      [3, 'application/vnd.cncf.notary.payload.v1+json'],
      [SCHEME, 'notary.x509'],
      ['io.cncf.notary.signingTime', new Tagged(1, Math.floor(Date.now() / 1000))],
      ...(opts.extraProtected ?? []),
    ]),
  );
  const payload = Buffer.from(opts.payload ?? PAYLOAD);
  const signature = rawSign(alg, signer.key, sigStructure(protectedBytes, payload));
  if (opts.tamper === 'payload') payload[10]! ^= 0x01;
  if (opts.tamper === 'signature') signature[signature.length >> 1]! ^= 0x01;
  const unprotected = new Map<string | number, unknown>([
    [33, opts.x5chain ?? [signer.der]],
    ['io.cncf.notary.signingAgent', 'cnab-oci test'],
  ]);
  const sign1 = [protectedBytes, unprotected, payload, signature];
  return encode(opts.tag === false ? sign1 : new Tagged(18, sign1));
}

async function verifyCose(envelope: Uint8Array, certificate: TestCert, style: 'config' | 'artifact' = 'config') {
  const { manifest, readBlob } = signatureManifest(envelope, 'application/cose', style);
  return verifyNotationManifest(manifest, readBlob, { certificate: certificate.cert, subject: SUBJECT });
}

let dir: string;
const certs: Record<'rsa' | 'ec' | 'ec384' | 'ca' | 'otherCa' | 'leaf', TestCert> = {} as never;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'notation-cose-'));
  certs.rsa = await makeCert(dir, 'cose-rsa', 'rsa2048');
  certs.ec = await makeCert(dir, 'cose-ec', 'p256');
  certs.ec384 = await makeCert(dir, 'cose-ec384', 'p384');
  certs.ca = await makeCert(dir, 'test-ca', 'p256', { ca: true });
  certs.otherCa = await makeCert(dir, 'other-ca', 'p256', { ca: true });
  certs.leaf = await makeCert(dir, 'leaf', 'p256', { issuer: 'test-ca' });
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('verifyNotationManifest with COSE envelopes', () => {
  it.each([
    ['rsa', 'PS256', 'cose-rsa'],
    ['ec', 'ES256', 'cose-ec'],
    ['ec384', 'ES384', 'cose-ec384'],
  ] as const)('verifies a %s %s COSE_Sign1', async (name, alg, cn) => {
    const check = await verifyCose(coseEnvelope(certs[name], alg), certs[name]);
    expect(check).toEqual({ format: 'notation', ok: true, signer: `CN=${cn}` });
  });

  it('takes x5chain as a single bstr, in an artifactType-style manifest', async () => {
    const check = await verifyCose(coseEnvelope(certs.ec, 'ES256', { x5chain: certs.ec.der }), certs.ec, 'artifact');
    expect(check.ok).toBe(true);
  });

  it.each(['payload', 'signature'] as const)('fails when one byte of the %s is changed', async (tamper) => {
    for (const [name, alg] of [['rsa', 'PS256'], ['ec', 'ES256']] as const) {
      const check = await verifyCose(coseEnvelope(certs[name], alg, { tamper }), certs[name]);
      expect(check).toMatchObject({ ok: false, reason: 'signature does not verify' });
    }
  });

  it('fails against another certificate', async () => {
    const check = await verifyCose(coseEnvelope(certs.rsa, 'PS256'), certs.ec);
    expect(check).toEqual({ format: 'notation', ok: false, reason: 'signed by cose-rsa not by the given certificate', signer: 'CN=cose-rsa' });
  });

  it('accepts a leaf issued by the given CA, with or without the CA in x5chain, and not another CA', async () => {
    expect((await verifyCose(coseEnvelope(certs.leaf, 'ES256'), certs.ca)).ok).toBe(true);
    expect((await verifyCose(coseEnvelope(certs.leaf, 'ES256', { x5chain: [certs.leaf.der, certs.ca.der] }), certs.ca)).ok).toBe(true);
    expect((await verifyCose(coseEnvelope(certs.leaf, 'ES256'), certs.leaf)).ok).toBe(true);
    const other = await verifyCose(coseEnvelope(certs.leaf, 'ES256', { x5chain: [certs.leaf.der, certs.otherCa.der] }), certs.otherCa);
    expect(other).toMatchObject({ ok: false, reason: 'signed by leaf not by the given certificate' });
  });

  it('fails when the algorithm does not match the key Notation would use', async () => {
    // Signed with P-256/SHA-256 but labelled ES384: refused before any crypto.
    const check = await verifyCose(coseEnvelope(certs.ec, 'ES256', { alg: 'ES384' }), certs.ec);
    expect(check).toMatchObject({ ok: false, reason: 'ES384 does not match the EC prime256v1 signing key' });
  });

  it('enforces crit: unknown labels, missing labels and the signing scheme', async () => {
    const plugin = coseEnvelope(certs.ec, 'ES256', { crit: [SCHEME, 'io.cncf.notary.verificationPlugin'], extraProtected: [['io.cncf.notary.verificationPlugin', 'x']] });
    expect((await verifyCose(plugin, certs.ec)).reason).toBe('critical header io.cncf.notary.verificationPlugin is not understood');
    const missing = coseEnvelope(certs.ec, 'ES256', { crit: [SCHEME, 'io.cncf.notary.expiry'] });
    expect((await verifyCose(missing, certs.ec)).reason).toBe('critical header io.cncf.notary.expiry is missing');
    const noScheme = coseEnvelope(certs.ec, 'ES256', { crit: [], extraProtected: [] });
    expect((await verifyCose(noScheme, certs.ec)).reason).toMatch(/^malformed COSE protected header: crit/);
  });

  it('enforces a signer-set expiry, tag 1 or plain integer', async () => {
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    for (const value of [new Tagged(1, expiry), expiry]) {
      const opts = { crit: [SCHEME, 'io.cncf.notary.expiry'], extraProtected: [['io.cncf.notary.expiry', value]] as [string, unknown][] };
      const { manifest, readBlob } = signatureManifest(coseEnvelope(certs.ec, 'ES256', opts), 'application/cose');
      const before = await verifyNotationManifest(manifest, readBlob, { certificate: certs.ec.cert, subject: SUBJECT });
      expect(before.ok).toBe(true);
      const after = await verifyNotationManifest(manifest, readBlob, { certificate: certs.ec.cert, subject: SUBJECT, now: new Date((expiry + 1) * 1000) });
      expect(after.reason).toBe(`signature expired at ${new Date(expiry * 1000).toISOString()}`);
    }
  });

  it('refuses an untagged COSE_Sign1 and a payload for another artifact', async () => {
    expect((await verifyCose(coseEnvelope(certs.ec, 'ES256', { tag: false }), certs.ec)).reason).toBe('malformed COSE envelope: not a tagged COSE_Sign1');
    const other = Buffer.from(JSON.stringify({ targetArtifact: { ...SUBJECT, digest: `sha256:${'cd'.repeat(32)}` } }));
    const check = await verifyCose(coseEnvelope(certs.ec, 'ES256', { payload: other }), certs.ec);
    expect(check.reason).toBe(`signed payload is for sha256:${'cd'.repeat(32)} not ${SUBJECT.digest}`);
  });
});
