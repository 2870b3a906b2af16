import { createHash, createPrivateKey, createPublicKey, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa';
import { z } from 'zod';
import { SigningInputError } from './result.js';

/**
 * cosign key files. A cosign private key is PKCS#8 DER sealed with NaCl secretbox under a
 * scrypt-derived key (go-securesystemslib `encrypted`), as base64 JSON in a PEM block labelled
 * `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign ≥ 2 writes this) or `ENCRYPTED COSIGN PRIVATE KEY`.
 * Only ECDSA P-256 is accepted here: it is cosign's default and what every verifier supports.
 */

const ENCRYPTED_LABELS = ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY'] as const;

/** The only scrypt work factors go-securesystemslib's decrypter accepts; anything else is refused there too. */
const SCRYPT_PARAMS: ReadonlyArray<readonly [number, number, number]> = [
  [32768, 8, 1],
  [65536, 8, 1],
  [131072, 8, 1],
];
/** Node's default scrypt maxmem (32 MiB) is below 128·N·r for N=65536; 256 MiB covers N=131072. */
const SCRYPT_MAXMEM = 256 * 1024 * 1024;

// Go writes []byte as standard base64 with padding.
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64');

const EncryptedKeySchema = z.object({
  kdf: z.object({
    name: z.literal('scrypt'),
    params: z.object({ N: z.number().int(), r: z.number().int(), p: z.number().int() }),
    salt: Base64,
  }),
  cipher: z.object({ name: z.literal('nacl/secretbox'), nonce: Base64 }),
  ciphertext: Base64,
});

interface PemBlock {
  label: string;
  der: Buffer;
}

/** The first PEM block in the text, as Go's pem.Decode finds it. */
function firstPemBlock(pem: string): PemBlock | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m) return undefined;
  return { label: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') };
}

function requireP256(key: KeyObject, what: string): KeyObject {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    const got = key.asymmetricKeyType === 'ec' ? `EC ${curve ?? 'unknown curve'}` : (key.asymmetricKeyType ?? 'unknown');
    throw new SigningInputError(`${what} is not an ECDSA P-256 key (it is ${got})`);
  }
  return key;
}

function pkcs8PrivateKey(der: Buffer, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    // cosign parses the plaintext with x509.ParsePKCS8PrivateKey only, so SEC1 is refused there too.
    let sec1 = false;
    try {
      createPrivateKey({ key: der, format: 'der', type: 'sec1' });
      sec1 = true;
    } catch {
      /* neither */
    }
    throw new SigningInputError(
      sec1 ? `${what} holds a SEC1 EC PRIVATE KEY, not PKCS#8 (cosign refuses it too)` : `${what} does not hold a PKCS#8 private key`,
    );
  }
  return requireP256(key, what);
}

function decryptCosignKey(body: Buffer, password: string, what: string): Buffer {
  let parsed: z.infer<typeof EncryptedKeySchema>;
  try {
    parsed = EncryptedKeySchema.parse(JSON.parse(body.toString('utf8')));
  } catch {
    throw new SigningInputError(`${what} is not a cosign encrypted key (expected scrypt + nacl/secretbox JSON)`);
  }
  const { N, r, p } = parsed.kdf.params;
  if (!SCRYPT_PARAMS.some(([n, rr, pp]) => n === N && rr === r && pp === p)) {
    throw new SigningInputError(`${what} uses unsupported scrypt parameters N=${N} r=${r} p=${p}`);
  }
  const salt = Buffer.from(parsed.kdf.salt, 'base64');
  const nonce = Buffer.from(parsed.cipher.nonce, 'base64');
  if (nonce.length !== 24) throw new SigningInputError(`${what} has a ${nonce.length}-byte nonce, expected 24`);
  const key = scryptSync(password, salt, 32, { N, r, p, maxmem: SCRYPT_MAXMEM });
  try {
    return Buffer.from(xsalsa20poly1305(key, nonce).decrypt(Buffer.from(parsed.ciphertext, 'base64')));
  } catch {
    // A Poly1305 tag mismatch: with an intact file that is the password.
    throw new SigningInputError(`cannot decrypt ${what}: wrong password?`);
  }
}

/**
 * A cosign private key (encrypted, either label) or a plain PKCS#8 `PRIVATE KEY` PEM, which must be
 * ECDSA P-256. `what` names the key in messages (a file name); the password never appears in one.
 */
export function loadPrivateKey(pem: string, password: string, what = 'the private key'): KeyObject {
  const block = firstPemBlock(pem);
  if (!block) throw new SigningInputError(`${what} is not a key file: no PEM block`);
  if ((ENCRYPTED_LABELS as readonly string[]).includes(block.label)) {
    return pkcs8PrivateKey(decryptCosignKey(block.der, password, what), what);
  }
  if (block.label === 'PRIVATE KEY') return pkcs8PrivateKey(block.der, what);
  throw new SigningInputError(
    `${what} is not a key file cosign reads: PEM block ${block.label} (expected ${ENCRYPTED_LABELS.join(', ')} or PRIVATE KEY)`,
  );
}

/** An SPKI `PUBLIC KEY` PEM (what `cosign generate-key-pair` writes as cosign.pub), ECDSA P-256. */
export function loadPublicKey(pem: string, what = 'the public key'): KeyObject {
  const block = firstPemBlock(pem);
  if (!block) throw new SigningInputError(`${what} is not a key file: no PEM block`);
  if (block.label !== 'PUBLIC KEY') throw new SigningInputError(`${what} is not a public key: PEM block ${block.label} (expected PUBLIC KEY)`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: block.der, format: 'der', type: 'spki' });
  } catch {
    throw new SigningInputError(`${what} does not hold a SubjectPublicKeyInfo public key`);
  }
  return requireP256(key, what);
}

/** The public half of a private key (a public key is returned as it is). */
export function publicKeyOf(privateKey: KeyObject): KeyObject {
  return privateKey.type === 'public' ? privateKey : createPublicKey(privateKey);
}

/** sha256 of the SPKI DER, hex: the key id sigstore uses (its bundle `hint` is the same hash in base64). */
export function keyFingerprint(key: KeyObject): string {
  const der = publicKeyOf(key).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

/** PEM armour as Go's pem.Encode writes it: 64-character lines, a final newline. */
function pemEncode(label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * A private key sealed the way `cosign generate-key-pair` seals it (scrypt N=65536, random salt and
 * nonce, `ENCRYPTED SIGSTORE PRIVATE KEY`). The JSON key order is go-securesystemslib's struct order.
 */
export function encryptPrivateKey(key: KeyObject, password: string): string {
  if (key.type !== 'private') throw new SigningInputError('only a private key can be encrypted');
  requireP256(key, 'the private key');
  const plaintext = key.export({ type: 'pkcs8', format: 'der' });
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const [N, r, p] = [65536, 8, 1];
  const secret = scryptSync(password, salt, 32, { N, r, p, maxmem: SCRYPT_MAXMEM });
  const ciphertext = xsalsa20poly1305(secret, nonce).encrypt(plaintext);
  // Every value is a number, an ASCII name or base64, so JSON.stringify writes what Go writes.
  const json = JSON.stringify({
    kdf: { name: 'scrypt', params: { N, r, p }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(ciphertext).toString('base64'),
  });
  return pemEncode(ENCRYPTED_LABELS[0], Buffer.from(json, 'utf8'));
}
