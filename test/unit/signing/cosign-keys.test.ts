import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encryptPrivateKey, keyFingerprint, loadPrivateKey, loadPublicKey, publicKeyOf } from '../../../src/signing/cosign-keys.js';
import { SigningInputError } from '../../../src/signing/result.js';

const KEYS = new URL('../../fixtures/signatures/cosign-encrypted-keys-password-hello/', import.meta.url);
const fixture = (dir: string, name: string): Buffer => readFileSync(new URL(`../../fixtures/signatures/${dir}/${name}`, import.meta.url));
const keyFile = (name: string): string => readFileSync(new URL(name, KEYS), 'utf8');

function expectSigningError(fn: () => unknown, message: RegExp): SigningInputError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SigningInputError);
  const err = caught as SigningInputError;
  expect(err.message).toMatch(message);
  expect(err.message).not.toContain('\n');
  expect(err.exitCode).toBe(2);
  return err;
}

const privateScalar = (key: KeyObject): string | undefined => key.export({ format: 'jwk' }).d;

describe('loadPrivateKey on cosign encrypted keys (password hello)', () => {
  for (const name of ['pemsigstorekey', 'pemcosignkey']) {
    it(`${name}: decrypts to the PKCS#8 DER beside it, and its public half is the .pub beside it`, () => {
      const key = loadPrivateKey(keyFile(`${name}.key`), 'hello');
      const derived = readFileSync(new URL(`${name}.plaintext.derived.der`, KEYS));
      expect(key.type).toBe('private');
      expect(Buffer.from(key.export({ type: 'pkcs8', format: 'der' })).equals(derived)).toBe(true);
      expect(privateScalar(key)).toBe(privateScalar(createPrivateKey({ key: derived, format: 'der', type: 'pkcs8' })));
      const pub = loadPublicKey(keyFile(`${name}.pub.derived.pem`));
      expect(publicKeyOf(key).equals(pub)).toBe(true);
      expect(keyFingerprint(key)).toBe(keyFingerprint(pub));
    });
  }

  it('a wrong password fails with one line that does not contain the password', () => {
    const password = 'hello-not-quite-s3cret';
    const err = expectSigningError(() => loadPrivateKey(keyFile('pemsigstorekey.key'), password, 'cosign.key'), /^cannot decrypt cosign\.key: wrong password\?$/);
    expect(err.message).not.toContain(password);
    expectSigningError(() => loadPrivateKey(keyFile('pemcosignkey.key'), ''), /wrong password\?/);
  });

  it('refuses the SEC1 key inside pemcosigneckey (N=65536), after decrypting it, as cosign does', () => {
    expectSigningError(() => loadPrivateKey(keyFile('pemcosigneckey.key'), 'hello'), /SEC1 EC PRIVATE KEY, not PKCS#8/);
    // With a wrong password it never gets that far.
    expectSigningError(() => loadPrivateKey(keyFile('pemcosigneckey.key'), 'hell'), /wrong password/);
  });

  it('refuses scrypt parameters go-securesystemslib refuses', () => {
    const pem = keyFile('pemsigstorekey.key');
    const body = pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const json = JSON.parse(Buffer.from(body, 'base64').toString('utf8')) as { kdf: { params: { N: number; r: number } } };
    for (const [N, r] of [[16384, 8], [32768, 16]] as const) {
      json.kdf.params.N = N;
      json.kdf.params.r = r;
      const forged = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(JSON.stringify(json)).toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
      expectSigningError(() => loadPrivateKey(forged, 'hello'), new RegExp(`unsupported scrypt parameters N=${N} r=${r} p=1`));
    }
  });

  it('refuses what is not a key file', () => {
    expectSigningError(() => loadPrivateKey('hello', 'hello'), /not a key file: no PEM block/);
    expectSigningError(() => loadPrivateKey('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', ''), /PEM block CERTIFICATE/);
    const garbage = `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n${Buffer.from('{"kdf":1}').toString('base64')}\n-----END ENCRYPTED COSIGN PRIVATE KEY-----`;
    expectSigningError(() => loadPrivateKey(garbage, 'x'), /not a cosign encrypted key/);
  });
});

describe('plain PKCS#8 and the curve', () => {
  it('loads a plain PKCS#8 P-256 PRIVATE KEY, ignoring the password', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(privateScalar(loadPrivateKey(pem, 'whatever'))).toBe(privateScalar(privateKey));
  });

  it('refuses P-384, RSA and Ed25519 keys, private and public', () => {
    const cases = [
      [generateKeyPairSync('ec', { namedCurve: 'P-384' }), /EC secp384r1/],
      [generateKeyPairSync('rsa', { modulusLength: 1024 }), /it is rsa/],
      [generateKeyPairSync('ed25519'), /it is ed25519/],
    ] as const;
    for (const [pair, got] of cases) {
      const priv = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const pub = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      expectSigningError(() => loadPrivateKey(priv, ''), /not an ECDSA P-256 key/);
      expectSigningError(() => loadPublicKey(pub), got);
    }
  });

  it('loadPublicKey wants a PUBLIC KEY block, not a private key', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expectSigningError(() => loadPublicKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), /PEM block PRIVATE KEY/);
  });
});

describe('keyFingerprint', () => {
  it('is sha256 of the SPKI DER: the classic vector key is dc2bcfdb… (NOTES), the bundle key matches the bundle hint', () => {
    expect(keyFingerprint(loadPublicKey(fixture('cosign-classic-sig-v3.0.4', 'cosign.pub').toString()))).toMatch(/^dc2bcfdb[0-9a-f]{56}$/);
    const bundle = JSON.parse(fixture('cosign-bundle-referrer-v3.0.4', 'bundle-sigstore.json').toString()) as {
      verificationMaterial: { publicKey: { hint: string } };
    };
    const fp = keyFingerprint(loadPublicKey(fixture('cosign-bundle-referrer-v3.0.4', 'bundle-cosign.pub').toString()));
    expect(Buffer.from(fp, 'hex').toString('base64')).toBe(bundle.verificationMaterial.publicKey.hint);
  });
});

describe('encryptPrivateKey', () => {
  it('writes an ENCRYPTED SIGSTORE PRIVATE KEY (N=65536, 64-column PEM) that loadPrivateKey opens with the password only', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = encryptPrivateKey(privateKey, 'correct horse');
    const lines = pem.trimEnd().split('\n');
    expect(lines[0]).toBe('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----');
    expect(lines.at(-1)).toBe('-----END ENCRYPTED SIGSTORE PRIVATE KEY-----');
    expect(lines.slice(1, -2).every((l) => l.length === 64)).toBe(true);
    const json = JSON.parse(Buffer.from(lines.slice(1, -1).join(''), 'base64').toString()) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(['kdf', 'cipher', 'ciphertext']);
    expect(json.kdf).toMatchObject({ name: 'scrypt', params: { N: 65536, r: 8, p: 1 } });
    expect(json.cipher).toMatchObject({ name: 'nacl/secretbox' });
    expect(pem).not.toContain('correct horse');

    expect(privateScalar(loadPrivateKey(pem, 'correct horse'))).toBe(privateScalar(privateKey));
    expectSigningError(() => loadPrivateKey(pem, 'correct horse '), /wrong password/);
    // Random salt and nonce: two encryptions differ.
    expect(encryptPrivateKey(privateKey, 'correct horse')).not.toBe(pem);
  });

  it('re-seals a cosign key so that it opens again to the same key', () => {
    const key = loadPrivateKey(keyFile('pemsigstorekey.key'), 'hello');
    expect(privateScalar(loadPrivateKey(encryptPrivateKey(key, ''), ''))).toBe(privateScalar(key));
  });
});
