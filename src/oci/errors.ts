/**
 * Typed errors. Every message is one line that names the file, field or reference at fault,
 * and never contains a credential. `exitCode` follows the CLI convention:
 * 2 = bad usage or bad input, 1 = a remote or runtime failure.
 */
export class CnabOciError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input from the user: a file, a bundle, a reference, a flag. Exit status 2. */
export class InputError extends CnabOciError {
  override readonly exitCode: number = 2;
}

export class InvalidDigestError extends InputError {
  constructor(readonly value: string) {
    super(`invalid digest ${JSON.stringify(value)}: expected sha256:<64 hex> or sha512:<128 hex>`);
  }
}

export class InvalidReferenceError extends InputError {
  constructor(readonly value: string, reason: string) {
    super(`invalid reference ${JSON.stringify(value)}: ${reason}`);
  }
}

/** Content whose bytes do not match the digest it was asked for. Never written anywhere. */
export class DigestMismatchError extends CnabOciError {
  constructor(readonly what: string, readonly expected: string, readonly actual: string) {
    super(`digest mismatch for ${what}: expected ${expected}, got ${actual}`);
  }
}

/** Content that does not exist in a target (404 in a registry, missing blob in a layout). */
export class NotFoundError extends CnabOciError {}

/** A manifest, index or config that is not what it claims to be. */
export class InvalidContentError extends CnabOciError {}
