import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManifestSchema } from '../../../src/oci/schemas.js';
import { isNotationSignature, loadCertificate, verifyNotationManifest } from '../../../src/signing/notation.js';
import { SigningInputError, type BlobReader } from '../../../src/signing/result.js';

/** The real Notation vectors (JWS, PS256), copied byte-exact from notaryproject/notation: see NOTES.md there. */

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/signatures/notation-jws-oci-layout');
const MULTI = join(FIXTURES, 'e2e-valid-multiple-signatures');
const SINGLE = join(FIXTURES, 'e2e-valid-signature');

const SUBJECT = 'sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9';
const SUBJECT_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const SIG_E2E = 'sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f';
const SIG_TESTCERT11 = 'sha256:c3ebe4a20b6832328fc5078a7795ddc1114b896e13fca2add38109c3866b5fbf';
const OTHER = `sha256:${'0'.repeat(64)}`;

const sha256 = (data: Uint8Array): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const blobPath = (layout: string, digest: string): string => join(layout, 'blobs', ...digest.split(':'));

/** Reads from an OCI layout and checks digest and size, as the real readers must. */
function layoutReader(layout: string, extra = new Map<string, Uint8Array>()): BlobReader {
  return async (d) => {
    const data = extra.get(d.digest) ?? (await readFile(blobPath(layout, d.digest)));
    if (sha256(data) !== d.digest || data.length !== d.size) throw new Error(`blob ${d.digest} does not match its descriptor`);
    return data;
  };
}

const json = (text: string): Record<string, unknown> => JSON.parse(text) as Record<string, unknown>;
const bytes = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
}

/** A copy of a signature manifest with some fields replaced (the manifest itself is not signed). */
function editManifest(manifest: Buffer, edit: (m: { layers: Layer[]; subject: Layer } & Record<string, unknown>) => void): Uint8Array {
  const m = JSON.parse(manifest.toString()) as { layers: Layer[]; subject: Layer } & Record<string, unknown>;
  edit(m);
  return bytes(m);
}

/** The envelope with one byte of its payload or signature flipped, pointed at by a rewritten manifest. */
async function tampered(field: 'payload' | 'signature'): Promise<{ manifest: Uint8Array; readBlob: BlobReader }> {
  const manifest = await readFile(blobPath(MULTI, SIG_E2E));
  const layer = (JSON.parse(manifest.toString()) as { layers: Layer[] }).layers[0]!;
  const envelope = json((await readFile(blobPath(MULTI, layer.digest))).toString());
  const raw = Buffer.from(envelope[field] as string, 'base64url');
  raw[Math.floor(raw.length / 2)]! ^= 0x01;
  envelope[field] = raw.toString('base64url');
  const blob = bytes(envelope);
  const digest = sha256(blob);
  return {
    manifest: editManifest(manifest, (m) => (m.layers[0] = { ...layer, digest, size: blob.length })),
    readBlob: layoutReader(MULTI, new Map([[digest, blob]])),
  };
}

let e2e: X509Certificate;
let newE2e: X509Certificate;
let testcert11: X509Certificate;

beforeAll(async () => {
  e2e = loadCertificate(await readFile(join(FIXTURES, 'e2e.crt'), 'utf8'));
  newE2e = loadCertificate(await readFile(join(FIXTURES, 'new_e2e.crt'), 'utf8'));
  // testcert11 ships only inside its signature: take x5c[0] from the envelope.
  const manifest = json((await readFile(blobPath(MULTI, SIG_TESTCERT11))).toString()) as { layers: Layer[] };
  const envelope = json((await readFile(blobPath(MULTI, manifest.layers[0]!.digest))).toString()) as { header: { x5c: string[] } };
  testcert11 = new X509Certificate(Buffer.from(envelope.header.x5c[0]!, 'base64'));
});

const subject = { digest: SUBJECT, mediaType: SUBJECT_MEDIA_TYPE, size: 517 };

async function verifyVector(layout: string, sig: string, certificate: X509Certificate, expected: { digest: string; mediaType?: string; size?: number } = subject) {
  return verifyNotationManifest(await readFile(blobPath(layout, sig)), layoutReader(layout), { certificate, subject: expected });
}

describe('isNotationSignature', () => {
  it('recognises both vector manifests by config.mediaType (they carry no artifactType), not the image', async () => {
    for (const digest of [SIG_E2E, SIG_TESTCERT11, SUBJECT]) {
      const m = ManifestSchema.parse(JSON.parse((await readFile(blobPath(MULTI, digest))).toString()));
      expect(isNotationSignature(m)).toBe(digest !== SUBJECT);
    }
  });
  it('recognises an OCI 1.1 artifact manifest by artifactType', () => {
    const config = { mediaType: 'application/vnd.oci.empty.v1+json', digest: OTHER, size: 2 };
    expect(isNotationSignature({ artifactType: 'application/vnd.cncf.notary.signature', config })).toBe(true);
    expect(isNotationSignature({ artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json', config })).toBe(false);
  });
});

describe('loadCertificate', () => {
  it('loads a PEM certificate and refuses garbage with SigningInputError', () => {
    expect(e2e.subject).toContain('CN=e2e');
    expect(() => loadCertificate('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n')).toThrow(SigningInputError);
    expect(() => loadCertificate('')).toThrow(/^not an X\.509 certificate: /);
  });
});

describe('verifyNotationManifest on the notation e2e vectors (JWS)', () => {
  it.each([MULTI, SINGLE])('verifies the e2e signature against e2e.crt (%s)', async (layout) => {
    const check = await verifyVector(layout, SIG_E2E, e2e);
    expect(check).toEqual({ format: 'notation', ok: true, signer: 'C=US, ST=WA, L=Seattle, O=Notary, CN=e2e' });
  });

  it('verifies the testcert11 signature against its own certificate, although that certificate has expired', async () => {
    // testcert11 (self-signed) expired on 2025-02-18, a day after it signed. We report ok: the
    // signature is cryptographically valid and the caller pinned this very certificate; expiry is
    // not a failure by itself (no timestamp countersignature to judge it by; see notation.ts).
    expect(Date.parse(testcert11.validTo)).toBeLessThan(Date.now());
    const check = await verifyVector(MULTI, SIG_TESTCERT11, testcert11);
    expect(check).toEqual({ format: 'notation', ok: true, signer: 'C=US, ST=WA, L=Seattle, O=Notary, CN=testcert11' });
  });

  it('fails the testcert11 signature against e2e.crt: another certificate signed it', async () => {
    const check = await verifyVector(MULTI, SIG_TESTCERT11, e2e);
    expect(check).toMatchObject({ ok: false, reason: 'signed by testcert11 not by the given certificate' });
    expect(check.signer).toContain('CN=testcert11');
  });

  it('fails the e2e signature against new_e2e.crt', async () => {
    const check = await verifyVector(MULTI, SIG_E2E, newE2e);
    expect(check).toMatchObject({ ok: false, reason: 'signed by e2e not by the given certificate' });
  });

  it.each(['payload', 'signature'] as const)('fails when one byte of the %s is changed', async (field) => {
    const { manifest, readBlob } = await tampered(field);
    const check = await verifyNotationManifest(manifest, readBlob, { certificate: e2e, subject });
    expect(check).toMatchObject({ format: 'notation', ok: false, reason: 'signature does not verify' });
  });

  it('calls an envelope that is not what its manifest names tampered, and a failed read only that', async () => {
    const manifest = await readFile(blobPath(MULTI, SIG_E2E));
    const changed: BlobReader = async (d) => Buffer.concat([await layoutReader(MULTI)(d), Buffer.from(' ')]).subarray(1);
    expect(await verifyNotationManifest(manifest, changed, { certificate: e2e, subject })).toMatchObject({ ok: false, reason: 'tampered: layer digest mismatch' });
    const unreachable: BlobReader = async () => {
      throw new Error('GET 127.0.0.1:5000: connection refused\nmore detail');
    };
    const check = await verifyNotationManifest(manifest, unreachable, { certificate: e2e, subject });
    expect(check.reason).toMatch(/^cannot read signature layer sha256:[0-9a-f]{64}: GET 127\.0\.0\.1:5000: connection refused$/);
  });

  it('fails when the expected subject is another digest, naming both', async () => {
    const check = await verifyVector(MULTI, SIG_E2E, e2e, { digest: OTHER });
    expect(check).toEqual({ format: 'notation', ok: false, reason: `signature is for ${SUBJECT} not ${OTHER}` });
  });

  it('fails on the signed payload when only the (unsigned) manifest subject was rewritten', async () => {
    const original = await readFile(blobPath(MULTI, SIG_E2E));
    const manifest = editManifest(original, (m) => (m.subject = { ...m.subject, digest: OTHER }));
    const check = await verifyNotationManifest(manifest, layoutReader(MULTI), { certificate: e2e, subject: { digest: OTHER } });
    expect(check).toMatchObject({ ok: false, reason: `signed payload is for ${SUBJECT} not ${OTHER}` });
  });

  it('checks the signed media type and size when they are expected', async () => {
    expect(await verifyVector(MULTI, SIG_E2E, e2e, { digest: SUBJECT })).toMatchObject({ ok: true });
    const wrongType = await verifyVector(MULTI, SIG_E2E, e2e, { ...subject, mediaType: 'application/vnd.oci.image.index.v1+json' });
    expect(wrongType.reason).toBe(`signed payload is for media type ${SUBJECT_MEDIA_TYPE} not application/vnd.oci.image.index.v1+json`);
    expect((await verifyVector(MULTI, SIG_E2E, e2e, { ...subject, size: 518 })).reason).toBe('signed payload is for 517 bytes not 518');
  });

  it('refuses an unknown envelope type and a manifest that is not a Notation signature', async () => {
    const original = await readFile(blobPath(MULTI, SIG_E2E));
    const manifest = editManifest(original, (m) => (m.layers[0] = { ...m.layers[0]!, mediaType: 'application/x-pkcs7' }));
    const check = await verifyNotationManifest(manifest, layoutReader(MULTI), { certificate: e2e, subject });
    expect(check).toEqual({ format: 'notation', ok: false, reason: 'unsupported envelope application/x-pkcs7' });
    const image = await verifyVector(MULTI, SUBJECT, e2e);
    expect(image.reason).toBe('not a Notation signature (application/vnd.notation.config)');
  });
});
