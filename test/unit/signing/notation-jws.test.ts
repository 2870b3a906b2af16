import { sign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyNotationManifest } from '../../../src/signing/notation.js';
import { makeCert, PAYLOAD, rawSign, signatureManifest, SUBJECT, type Alg, type TestCert } from './notation-helpers.js';

/** JWS envelopes built here, for what the PS256 vectors do not reach: ECDSA, crit, expiry. */

const SCHEME = 'io.cncf.notary.signingScheme';
const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

function jwsEnvelope(signer: TestCert, alg: Alg, header: Record<string, unknown> = {}): Uint8Array {
  const protectedHeader = b64url(
    JSON.stringify({
      alg,
      crit: [SCHEME],
      cty: 'application/vnd.cncf.notary.payload.v1+json',
      [SCHEME]: 'notary.x509',
      'io.cncf.notary.signingTime': new Date().toISOString(),
      ...header,
    }),
  );
  const payload = b64url(PAYLOAD);
  const signature = rawSign(alg, signer.key, Buffer.from(`${protectedHeader}.${payload}`));
  const envelope = { payload, protected: protectedHeader, header: { x5c: [signer.der.toString('base64')] }, signature: b64url(signature) };
  return Buffer.from(JSON.stringify(envelope));
}

async function verifyJws(envelope: Uint8Array, certificate: TestCert, now?: Date) {
  const { manifest, readBlob } = signatureManifest(envelope, 'application/jose+json');
  return verifyNotationManifest(manifest, readBlob, { certificate: certificate.cert, subject: SUBJECT, ...(now ? { now } : {}) });
}

let dir: string;
let ec: TestCert;
let ec384: TestCert;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'notation-jws-'));
  ec = await makeCert(dir, 'jws-ec', 'p256');
  ec384 = await makeCert(dir, 'jws-ec384', 'p384');
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('verifyNotationManifest with built JWS envelopes', () => {
  it('verifies ES256 and ES384 (raw r||s signatures)', async () => {
    expect(await verifyJws(jwsEnvelope(ec, 'ES256'), ec)).toEqual({ format: 'notation', ok: true, signer: 'CN=jws-ec' });
    expect((await verifyJws(jwsEnvelope(ec384, 'ES384'), ec384)).ok).toBe(true);
  });

  it('fails an ECDSA signature in DER form, as JWS forbids', async () => {
    const envelope = JSON.parse(Buffer.from(jwsEnvelope(ec, 'ES256')).toString()) as Record<string, string>;
    const input = Buffer.from(`${envelope.protected}.${envelope.payload}`);
    envelope.signature = b64url(sign('sha256', input, ec.key));
    expect((await verifyJws(Buffer.from(JSON.stringify(envelope)), ec)).reason).toBe('signature does not verify');
  });

  it('refuses critical headers it does not understand, or that are absent', async () => {
    const plugin = jwsEnvelope(ec, 'ES256', { crit: [SCHEME, 'io.cncf.notary.verificationPlugin'], 'io.cncf.notary.verificationPlugin': 'p' });
    expect((await verifyJws(plugin, ec)).reason).toBe('critical header io.cncf.notary.verificationPlugin is not understood');
    const b64 = jwsEnvelope(ec, 'ES256', { crit: [SCHEME, 'b64'], b64: false });
    expect((await verifyJws(b64, ec)).reason).toBe('critical header b64 is not understood');
    const absent = jwsEnvelope(ec, 'ES256', { crit: [SCHEME, 'io.cncf.notary.authenticSigningTime'] });
    expect((await verifyJws(absent, ec)).reason).toBe('critical header io.cncf.notary.authenticSigningTime is missing');
  });

  it('requires the signing scheme and a given expiry to be critical', async () => {
    const expiry = new Date(Date.now() + 3_600_000).toISOString();
    const noScheme = jwsEnvelope(ec, 'ES256', { crit: ['io.cncf.notary.expiry'], 'io.cncf.notary.expiry': expiry });
    expect((await verifyJws(noScheme, ec)).reason).toBe(`header ${SCHEME} must be critical`);
    const softExpiry = jwsEnvelope(ec, 'ES256', { 'io.cncf.notary.expiry': expiry });
    expect((await verifyJws(softExpiry, ec)).reason).toBe('header io.cncf.notary.expiry must be critical');
    const unknownScheme = jwsEnvelope(ec, 'ES256', { [SCHEME]: 'notary.default' });
    expect((await verifyJws(unknownScheme, ec)).reason).toBe('unsupported signing scheme notary.default');
  });

  it('enforces the signer-set expiry against the given time', async () => {
    const expiry = '2030-01-01T00:00:00Z';
    const envelope = jwsEnvelope(ec, 'ES256', { crit: [SCHEME, 'io.cncf.notary.expiry'], 'io.cncf.notary.expiry': expiry });
    expect((await verifyJws(envelope, ec, new Date('2029-12-31T23:59:59Z'))).ok).toBe(true);
    expect((await verifyJws(envelope, ec, new Date('2030-01-01T00:00:01Z'))).reason).toBe('signature expired at 2030-01-01T00:00:00.000Z');
  });

  it('refuses unsupported algorithms and malformed envelopes', async () => {
    const hs = jwsEnvelope(ec, 'ES256', { alg: 'HS256' });
    expect((await verifyJws(hs, ec)).reason).toBe('unsupported signature algorithm HS256');
    expect((await verifyJws(Buffer.from('{"payload":"e30"}'), ec)).reason).toMatch(/^malformed JWS envelope: /);
    expect((await verifyJws(Buffer.from('not json'), ec)).reason).toBe('malformed JWS envelope: the envelope is not JSON');
  });
});
