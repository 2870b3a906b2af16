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

/** The operation was cancelled (its AbortSignal fired; Ctrl-C in the CLI). Exit status 130. */
export class AbortedError extends CnabOciError {
  override readonly exitCode: number = 130;
}

/** Throw an AbortedError, naming `what`, when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(`${what}: cancelled`);
}

/** A manifest, index or config that is not what it claims to be. */
export class InvalidContentError extends CnabOciError {}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT']);

/**
 * A failure that trying again may cure: a broken connection, a registry saying "later"
 * (408, 429, 5xx), or bytes that arrived damaged (a digest mismatch in transit, or the
 * registry's DIGEST_INVALID for what we verified before sending). A transfer that fails with
 * one of these is started again from a fresh read of its source, a bounded number of times.
 */
export function isTransientError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof DigestMismatchError || err.name === 'ConnectionError') return true;
  const { status, codes, code } = err as { status?: unknown; codes?: unknown; code?: unknown };
  if (typeof status === 'number') {
    return status === 408 || status === 429 || status >= 500 || (Array.isArray(codes) && codes.includes('DIGEST_INVALID'));
  }
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return (typeof code === 'string' && TRANSIENT_CODES.has(code)) || (typeof cause?.code === 'string' && TRANSIENT_CODES.has(cause.code));
}

/** The first line of an error's message, for one-line reports. */
export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
