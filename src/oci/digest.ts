import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, InvalidDigestError } from './errors.js';

export type Algorithm = 'sha256' | 'sha512';
const HEX_LENGTH: Record<Algorithm, number> = { sha256: 64, sha512: 128 };

/** A validated `algorithm:hex` digest. Only sha256 and sha512 are accepted. */
export type Digest = `${Algorithm}:${string}`;

export function parseDigest(value: string): { algorithm: Algorithm; hex: string } {
  const m = /^(sha256|sha512):([a-f0-9]+)$/.exec(value);
  if (!m || m[2]!.length !== HEX_LENGTH[m[1] as Algorithm]) throw new InvalidDigestError(value);
  return { algorithm: m[1] as Algorithm, hex: m[2]! };
}

const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Without throwing: tags are checked on hot paths, and an Error (with its stack) per tag is not cheap. */
export function isDigest(value: string): value is Digest {
  return DIGEST.test(value);
}

export function digestOf(data: Uint8Array | string, algorithm: Algorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Incremental digester for streamed content. */
export class Digester {
  private readonly hash: Hash;
  size = 0;
  constructor(readonly algorithm: Algorithm = 'sha256') {
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }
  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/**
 * A pass-through stream that hashes what flows through it and fails the stream
 * (instead of ending it) when the size or digest differs from what was expected.
 * `what` names the content in the error (a reference or a descriptor).
 */
export function verifyingStream(expected: { digest: string; size?: number }, what: string): Transform {
  const { algorithm } = parseDigest(expected.digest);
  const digester = new Digester(algorithm);
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      digester.update(chunk);
      if (expected.size !== undefined && expected.size >= 0 && digester.size > expected.size) {
        cb(new DigestMismatchError(what, expected.digest, `more than ${expected.size} bytes`));
        return;
      }
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const actual = digester.digest();
      if (expected.size !== undefined && expected.size >= 0 && digester.size !== expected.size) {
        cb(new DigestMismatchError(what, expected.digest, `${actual} (${digester.size} bytes, expected ${expected.size})`));
      } else if (actual !== expected.digest) {
        cb(new DigestMismatchError(what, expected.digest, actual));
      } else {
        cb();
      }
    },
  });
}

/** The referrers tag schema's tag for a subject, `sha256-<hex>` (cosign's tags add `.sig` and the like). */
export function referrersTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm}-${hex}`;
}
