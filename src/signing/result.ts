import { CnabOciError } from '../oci/errors.js';

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
