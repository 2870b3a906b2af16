import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DigestMismatchError, InvalidContentError } from '../../../src/oci/errors.js';
import type { Descriptor } from '../../../src/oci/schemas.js';
import { loadPrivateKey, loadPublicKey } from '../../../src/signing/cosign-keys.js';
import {
  classicSignatureManifest,
  cosignTag,
  referrerSignatureManifest,
  signPayload,
  verifyCosignManifest,
} from '../../../src/signing/cosign.js';
import { SigningInputError, type BlobReader } from '../../../src/signing/result.js';
import { parseSimpleSigningPayload, SimpleSigningPayloadError, simpleSigningPayload } from '../../../src/signing/simple-signing.js';

const fixture = (dir: string, name: string): Buffer => readFileSync(new URL(`../../fixtures/signatures/${dir}/${name}`, import.meta.url));
const CLASSIC = 'cosign-classic-sig-v3.0.4';
const BUNDLE = 'cosign-bundle-referrer-v3.0.4';
const KEYS = 'cosign-encrypted-keys-password-hello';

const sha256 = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

// From the vectors' NOTES.md, written down independently of the bytes.
const CLASSIC_SUBJECT = 'sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268';
const BUNDLE_SUBJECT = 'sha256:d7d5640c741c60b47fa4b5530daa20a6469b55754a89dd42adbadadb59f9093c';
const OTHER_SUBJECT = `sha256:${'0'.repeat(64)}`;

const classic = {
  manifest: fixture(CLASSIC, 'sig-manifest.json'),
  payload: fixture(CLASSIC, 'payload.json'),
  config: fixture(CLASSIC, 'config.json'),
  key: loadPublicKey(fixture(CLASSIC, 'cosign.pub').toString()),
};
const bundle = {
  manifest: fixture(BUNDLE, 'bundle-referring-manifest.json'),
  blob: fixture(BUNDLE, 'bundle-sigstore.json'),
  key: loadPublicKey(fixture(BUNDLE, 'bundle-cosign.pub').toString()),
};
const classicSignature = (JSON.parse(classic.manifest.toString()) as { layers: [{ annotations: Record<string, string> }] }).layers[0]
  .annotations['dev.cosignproject.cosign/signature']!;
const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** A content store keyed by digest; it does not check digests, so the verifier's own check is tested. */
function store(...blobs: Uint8Array[]): BlobReader {
  const byDigest = new Map(blobs.map((b) => [sha256(b), b]));
  return async (d) => {
    const b = byDigest.get(d.digest);
    if (!b) throw new Error(`blob ${d.digest} not found`);
    return b;
  };
}
const mapped = (to: Uint8Array): BlobReader => async () => to;

describe('the simple-signing payload', () => {
  it('is byte for byte what cosign wrote in the vector', () => {
    const bytes = simpleSigningPayload('localhost:15381/tobby/fixture', CLASSIC_SUBJECT);
    expect(Buffer.from(bytes).equals(classic.payload)).toBe(true);
  });

  it('parses, with optional null or an object, and refuses what is not one', () => {
    expect(parseSimpleSigningPayload(classic.payload)).toEqual({
      dockerReference: 'localhost:15381/tobby/fixture',
      manifestDigest: CLASSIC_SUBJECT,
      type: 'cosign container image signature',
    });
    const withOptional = classic.payload.toString().replace('"optional":null', '"optional":{"env":"prod"}');
    expect(parseSimpleSigningPayload(Buffer.from(withOptional)).manifestDigest).toBe(CLASSIC_SUBJECT);
    expect(() => parseSimpleSigningPayload(Buffer.from('{"critical":{}}'))).toThrow(SimpleSigningPayloadError);
    expect(() => parseSimpleSigningPayload(Buffer.from('not json'))).toThrow(/not JSON/);
  });
});

describe('cosignTag and signPayload', () => {
  it('names the tag after the digest', () => {
    expect(cosignTag(CLASSIC_SUBJECT, 'sig')).toBe('sha256-f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268.sig');
    expect(cosignTag(CLASSIC_SUBJECT, 'att').endsWith('.att')).toBe(true);
  });

  it('signs so that node crypto.verify accepts it over the raw payload with the key file beside it', () => {
    const key = loadPrivateKey(fixture(KEYS, 'pemsigstorekey.key').toString(), 'hello');
    const pub = loadPublicKey(fixture(KEYS, 'pemsigstorekey.pub.derived.pem').toString());
    const payload = simpleSigningPayload('registry.example/app', CLASSIC_SUBJECT);
    const der = Buffer.from(signPayload(payload, key), 'base64');
    expect(der[0]).toBe(0x30); // ASN.1 SEQUENCE, not raw r‖s
    expect(verify('sha256', payload, { key: pub, dsaEncoding: 'der' }, der)).toBe(true);
    expect(verify('sha256', Buffer.concat([payload, Buffer.from(' ')]), { key: pub, dsaEncoding: 'der' }, der)).toBe(false);
    expect(() => signPayload(payload, pub)).toThrow(SigningInputError);
  });
});

describe('verifyCosignManifest: the classic .sig vector', () => {
  const read = store(classic.payload, classic.config);

  it('verifies with its cosign.pub and reports the reference and the key fingerprint', async () => {
    const checks = await verifyCosignManifest(classic.manifest, read, { publicKey: classic.key, subjectDigest: CLASSIC_SUBJECT });
    expect(checks).toEqual([{ format: 'cosign', ok: true, signer: expect.stringMatching(/^dc2bcfdb/), dockerReference: 'localhost:15381/tobby/fixture' }]);
  });

  it('fails with another key', async () => {
    const checks = await verifyCosignManifest(classic.manifest, read, { publicKey: otherKey.publicKey, subjectDigest: CLASSIC_SUBJECT });
    expect(checks).toEqual([{ format: 'cosign', ok: false, reason: 'signature does not verify with the given key' }]);
  });

  it('fails for another subject digest', async () => {
    const [check] = await verifyCosignManifest(classic.manifest, read, { publicKey: classic.key, subjectDigest: OTHER_SUBJECT });
    expect(check).toMatchObject({ ok: false, reason: `payload is for ${CLASSIC_SUBJECT} not ${OTHER_SUBJECT}` });
  });

  it('fails when one byte of the payload is changed: as tampered, or, with the manifest rewritten to match, as a bad signature', async () => {
    const changed = Buffer.from(classic.payload);
    changed[changed.indexOf('tobby')] = 'T'.charCodeAt(0);
    const expect_ = { publicKey: classic.key, subjectDigest: CLASSIC_SUBJECT };
    expect(await verifyCosignManifest(classic.manifest, mapped(changed), expect_)).toEqual([
      { format: 'cosign', ok: false, reason: 'tampered: layer digest mismatch' },
    ]);
    const rewritten = Buffer.from(classic.manifest.toString().replace(sha256(classic.payload), sha256(changed)));
    expect(await verifyCosignManifest(rewritten, store(changed), expect_)).toEqual([
      { format: 'cosign', ok: false, reason: 'signature does not verify with the given key' },
    ]);
  });

  it("turns the reader's digest error into a reason, and says when there is no signature layer", async () => {
    const throwing: BlobReader = async (d) => {
      throw new DigestMismatchError(d.digest, d.digest, 'sha256:beef');
    };
    const [check] = await verifyCosignManifest(classic.manifest, throwing, { publicKey: classic.key, subjectDigest: CLASSIC_SUBJECT });
    expect(check?.reason).toBe('tampered: layer digest mismatch');
    const empty = Buffer.from(classic.manifest.toString().replace(/"layers":\[.*\]/, '"layers":[]'));
    expect(await verifyCosignManifest(empty, read, { publicKey: classic.key, subjectDigest: CLASSIC_SUBJECT })).toEqual([
      { format: 'cosign', ok: false, reason: 'no signature layer' },
    ]);
  });
});

describe('verifyCosignManifest: the cosign 3 Sigstore bundle referrer vector', () => {
  const expect_ = { publicKey: bundle.key, subjectDigest: BUNDLE_SUBJECT };

  it('verifies with bundle-cosign.pub', async () => {
    expect(await verifyCosignManifest(bundle.manifest, store(bundle.blob), expect_)).toEqual([
      { format: 'sigstore-bundle', ok: true, signer: expect.stringMatching(/^[0-9a-f]{64}$/) },
    ]);
  });

  it('fails with another key, for another subject, and tampered', async () => {
    const read = store(bundle.blob);
    const [wrongKey] = await verifyCosignManifest(bundle.manifest, read, { ...expect_, publicKey: classic.key });
    expect(wrongKey?.reason).toBe('signature does not verify with the given key');
    const [wrongSubject] = await verifyCosignManifest(bundle.manifest, read, { ...expect_, subjectDigest: OTHER_SUBJECT });
    expect(wrongSubject?.reason).toBe(`payload is for ${BUNDLE_SUBJECT} not ${OTHER_SUBJECT}`);

    // The statement re-pointed at another image, signature kept, manifest fixed up to match.
    const json = JSON.parse(bundle.blob.toString()) as { dsseEnvelope: { payload: string } };
    const statement = Buffer.from(json.dsseEnvelope.payload, 'base64').toString().replace(BUNDLE_SUBJECT.slice(7), OTHER_SUBJECT.slice(7));
    json.dsseEnvelope.payload = Buffer.from(statement).toString('base64');
    const forged = Buffer.from(JSON.stringify(json));
    const manifest = Buffer.from(bundle.manifest.toString().replace(sha256(bundle.blob), sha256(forged)).replace('"size":4037', `"size":${forged.length}`));
    const [forgedCheck] = await verifyCosignManifest(manifest, store(forged), { ...expect_, subjectDigest: OTHER_SUBJECT });
    expect(forgedCheck).toEqual({ format: 'sigstore-bundle', ok: false, reason: 'signature does not verify with the given key' });
    const [tampered] = await verifyCosignManifest(bundle.manifest, mapped(forged), expect_);
    expect(tampered?.reason).toBe('tampered: layer digest mismatch');
  });
});

describe('verifyCosignManifest: a bundle we sign here', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  /** A one-layer bundle referrer whose DSSE signature is made here, over PAE written out by hand. */
  function bundleFor(predicateType: string): { manifest: Buffer; blob: Buffer } {
    const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: BUNDLE_SUBJECT.slice(7) } }], predicateType }));
    const type = 'application/vnd.in-toto+json';
    const signed = Buffer.concat([Buffer.from(`DSSEv1 28 ${type} ${statement.length} `), statement]);
    const sig = signPayload(signed, key.privateKey);
    const blob = Buffer.from(JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', dsseEnvelope: { payload: statement.toString('base64'), payloadType: type, signatures: [{ sig }] } }));
    const manifest = Buffer.from(bundle.manifest.toString().replace(sha256(bundle.blob), sha256(blob)).replace('"size":4037', `"size":${blob.length}`));
    return { manifest, blob };
  }

  it('verifies a signature statement and refuses an attestation made with the same key', async () => {
    const expect_ = { publicKey: key.publicKey, subjectDigest: BUNDLE_SUBJECT };
    const sig = bundleFor('https://sigstore.dev/cosign/sign/v1');
    expect((await verifyCosignManifest(sig.manifest, store(sig.blob), expect_))[0]?.ok).toBe(true);
    const att = bundleFor('https://slsa.dev/provenance/v1');
    expect((await verifyCosignManifest(att.manifest, store(att.blob), expect_))[0]).toEqual({
      format: 'sigstore-bundle',
      ok: false,
      reason: 'the bundle is an attestation (https://slsa.dev/provenance/v1), not a signature',
    });
  });
});

describe('classicSignatureManifest', () => {
  const layer = { payload: classic.payload, signature: classicSignature };

  it("rebuilds the vector's manifest and config byte for byte from its payload and signature", () => {
    const built = classicSignatureManifest(layer);
    expect(Buffer.from(built.manifest).toString()).toBe(classic.manifest.toString());
    expect(Buffer.from(built.config).toString()).toBe(classic.config.toString());
    expect(built.manifestDescriptor).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 558, digest: sha256(classic.manifest) });
    expect(built.manifestDescriptor.digest).toMatch(/^sha256:b6872674/);
    expect(sha256(built.config)).toMatch(/^sha256:2122b6ad/);
    expect(built.blobs.map((b) => sha256(b))).toEqual([sha256(classic.payload), sha256(classic.config)]);
    expect(built.added).toBe(true);
  });

  it('does not add the same signature twice', () => {
    const again = classicSignatureManifest(layer, { manifest: classic.manifest, config: classic.config });
    expect(again.added).toBe(false);
    expect(again.blobs).toEqual([]);
    expect(Buffer.from(again.manifest).equals(classic.manifest)).toBe(true);
  });

  it('appends a second signature as a second layer; each verifies with its own key only', async () => {
    const key = loadPrivateKey(fixture(KEYS, 'pemsigstorekey.key').toString(), 'hello');
    const ours = { payload: classic.payload, signature: signPayload(classic.payload, key) };
    const built = classicSignatureManifest(ours, { manifest: classic.manifest, config: classic.config });
    expect(built.added).toBe(true);
    const m = JSON.parse(Buffer.from(built.manifest).toString()) as { layers: unknown[] };
    expect(m.layers).toHaveLength(2);
    expect(m.layers[0]).toEqual((JSON.parse(classic.manifest.toString()) as { layers: unknown[] }).layers[0]);
    const d = sha256(classic.payload);
    // go-containerregistry's config for two appended layers, written out by hand.
    expect(Buffer.from(built.config).toString()).toBe(
      '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"},{"created":"0001-01-01T00:00:00Z"}],' +
        `"os":"","rootfs":{"type":"layers","diff_ids":["${d}","${d}"]},"config":{}}`,
    );

    const read = store(classic.payload, built.config);
    const withVectorKey = await verifyCosignManifest(built.manifest, read, { publicKey: classic.key, subjectDigest: CLASSIC_SUBJECT });
    expect(withVectorKey.map((c) => c.ok)).toEqual([true, false]);
    const withOurKey = await verifyCosignManifest(built.manifest, read, { publicKey: key, subjectDigest: CLASSIC_SUBJECT });
    expect(withOurKey.map((c) => c.ok)).toEqual([false, true]);

    const third = classicSignatureManifest(ours, { manifest: built.manifest, config: built.config });
    expect(third.added).toBe(false);
  });

  it('refuses an existing config that is not the one its manifest names', () => {
    expect(() => classicSignatureManifest(layer, { manifest: classic.manifest, config: Buffer.from('{}') })).toThrow(InvalidContentError);
  });
});

describe('referrerSignatureManifest', () => {
  it("writes cosign's oci-1-1 form: config.mediaType and artifactType the sig type, ggcr field order, subject from a HEAD", async () => {
    const key = loadPrivateKey(fixture(KEYS, 'pemcosignkey.key').toString(), 'hello');
    const payload = simpleSigningPayload('registry.example/app', CLASSIC_SUBJECT);
    const signature = signPayload(payload, key);
    const subject: Descriptor = { mediaType: 'application/vnd.oci.image.index.v1+json', size: 928, digest: CLASSIC_SUBJECT, annotations: { a: 'b' } };
    const built = referrerSignatureManifest(subject, { payload, signature });
    const config = Buffer.from(built.config).toString();
    expect(config).toBe(
      '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],' +
        `"os":"","rootfs":{"type":"layers","diff_ids":["${sha256(payload)}"]},"config":{}}`,
    );
    expect(Buffer.from(built.manifest).toString()).toBe(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' +
        `"config":{"mediaType":"application/vnd.dev.cosign.artifact.sig.v1+json","size":${config.length},"digest":"${sha256(config)}"},` +
        `"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":${payload.length},"digest":"${sha256(payload)}",` +
        `"annotations":{"dev.cosignproject.cosign/signature":"${signature}"}}],` +
        `"subject":{"mediaType":"application/vnd.oci.image.index.v1+json","size":928,"digest":"${CLASSIC_SUBJECT}"},` +
        '"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json"}',
    );
    expect(built.manifestDescriptor).toMatchObject({ digest: sha256(built.manifest), artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' });
    const checks = await verifyCosignManifest(built.manifest, store(...built.blobs), { publicKey: key, subjectDigest: CLASSIC_SUBJECT });
    expect(checks).toEqual([{ format: 'cosign', ok: true, signer: expect.any(String), dockerReference: 'registry.example/app' }]);
  });
});
