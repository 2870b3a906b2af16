import { execFile } from 'node:child_process';
import { constants, createHash, createPrivateKey, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BlobReader } from '../../../src/signing/result.js';

/** Test-side builders for Notation signatures, made with openssl and node:crypto only. */

const run = promisify(execFile);

export const SUBJECT = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'ab'.repeat(32)}`, size: 1234 };
export const PAYLOAD = Buffer.from(JSON.stringify({ targetArtifact: SUBJECT }));

export interface TestCert {
  cert: X509Certificate;
  key: KeyObject;
  der: Buffer;
}

const KEYS = {
  rsa2048: ['-newkey', 'rsa:2048'],
  p256: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'],
  p384: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp384r1'],
} as const;

/** A certificate from `openssl req -x509` (self-signed), or issued by `issuer` when given. */
export async function makeCert(dir: string, cn: string, key: keyof typeof KEYS, opts: { ca?: boolean; issuer?: string } = {}): Promise<TestCert> {
  const f = (ext: string) => join(dir, `${cn}.${ext}`);
  const common = [...KEYS[key], '-nodes', '-keyout', f('key'), '-subj', `/CN=${cn}`];
  const ext = opts.ca ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'] : [];
  if (opts.issuer) {
    await run('openssl', ['req', ...common, '-out', f('csr')]);
    const ca = (ext: string) => join(dir, `${opts.issuer}.${ext}`);
    await run('openssl', ['x509', '-req', '-in', f('csr'), '-CA', ca('crt'), '-CAkey', ca('key'), '-CAcreateserial', '-out', f('crt'), '-days', '2']);
  } else {
    await run('openssl', ['req', '-x509', ...common, ...ext, '-out', f('crt'), '-days', '2']);
  }
  const cert = new X509Certificate(await readFile(f('crt')));
  return { cert, key: createPrivateKey(await readFile(f('key'))), der: cert.raw };
}

const HASHES = { PS256: 'sha256', PS384: 'sha384', PS512: 'sha512', ES256: 'sha256', ES384: 'sha384', ES512: 'sha512' } as const;
export type Alg = keyof typeof HASHES;

/** RSASSA-PSS with salt = hash length, or ECDSA as raw r||s (JWS and COSE both want that). */
export function rawSign(alg: Alg, key: KeyObject, data: Uint8Array): Buffer {
  const hash = HASHES[alg];
  if (alg.startsWith('PS')) {
    return sign(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: createHash(hash).digest().length });
  }
  return sign(hash, data, { key, dsaEncoding: 'ieee-p1363' });
}

export const sha256 = (data: Uint8Array): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/**
 * A signature manifest holding one envelope and a reader serving it. `style` 'config' is what
 * notation writes (type in config.mediaType); 'artifact' is the OCI 1.1 artifactType form.
 */
export function signatureManifest(envelope: Uint8Array, mediaType: string, style: 'config' | 'artifact' = 'config'): { manifest: Uint8Array; readBlob: BlobReader } {
  const type = 'application/vnd.cncf.notary.signature';
  const empty = Buffer.from('{}');
  const config = { mediaType: style === 'config' ? type : 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 };
  const layer = { mediaType, digest: sha256(envelope), size: envelope.length };
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    ...(style === 'artifact' ? { artifactType: type } : {}),
    config,
    layers: [layer],
    subject: SUBJECT,
  };
  const readBlob: BlobReader = async (d) => {
    if (d.digest !== layer.digest || d.size !== layer.size) throw new Error(`unexpected blob ${d.digest}`);
    return envelope;
  };
  return { manifest: Buffer.from(JSON.stringify(manifest)), readBlob };
}
