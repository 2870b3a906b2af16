import { digestOf, parseDigest } from '../oci/digest.js';
import { CnabOciError, DigestMismatchError, firstLine } from '../oci/errors.js';

/**
 * The signature formats cnab-oci reads. `cosign`: a simple-signing payload with an ECDSA
 * signature (classic `.sig` tag or an OCI 1.1 referrer); `sigstore-bundle`: cosign 3's
 * default, a DSSE envelope in a Sigstore bundle; `notation`: a Notation JWS or COSE envelope.
 */
export type SignatureFormat = 'cosign' | 'sigstore-bundle' | 'notation';

/** The outcome of checking one signature against one key or certificate. */
export interface SignatureCheck {
  format: SignatureFormat;
  ok: boolean;
  /** Why it does not verify, one line (set when !ok). */
  reason?: string;
  /** Who signed, where the signature says: a key fingerprint, a certificate subject. */
  signer?: string;
  /** cosign's payload: the docker-reference it names. */
  dockerReference?: string;
}

/** A key file, a certificate or a password that cannot be used. Exit status 2. */
export class SigningInputError extends CnabOciError {
  override readonly exitCode: number = 2;
}

/** Reads a blob a signature manifest references (config, layer), verified, from wherever it is. */
export type BlobReader = (descriptor: { mediaType: string; digest: string; size: number }) => Promise<Uint8Array>;

/**
 * A signature layer's bytes, checked against its descriptor here too (whoever reads them), or
 * why they cannot be had: `tampered` when they are not what the manifest names.
 */
export async function readSignatureLayer(layer: { mediaType: string; digest: string; size: number }, readBlob: BlobReader): Promise<Uint8Array | { reason: string }> {
  const tampered = { reason: 'tampered: layer digest mismatch' };
  let bytes: Uint8Array;
  try {
    bytes = await readBlob({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
  } catch (err) {
    if (err instanceof DigestMismatchError) return tampered;
    return { reason: `cannot read signature layer ${layer.digest}: ${firstLine(err)}` };
  }
  const { algorithm } = parseDigest(layer.digest);
  return bytes.length === layer.size && digestOf(bytes, algorithm) === layer.digest ? bytes : tampered;
}
