import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Target } from './target.js';
import type { Descriptor } from '../oci/schemas.js';
import { digestOf, parseDigest, verifyingStream } from '../oci/digest.js';
import { DigestMismatchError, NotFoundError } from '../oci/errors.js';

/**
 * A destination that keeps nothing: what is pushed is read to its end and checked against its
 * descriptor, then dropped. A copy into it is a verification of the source: every object of the
 * graph present, whole, and what its digest says (import checks a thick bundle this way).
 */
export class DiscardTarget implements Target {
  constructor(readonly location = 'verification') {}

  async resolve(reference: string): Promise<Descriptor> {
    throw new NotFoundError(`${this.location}: ${reference} not found (nothing is kept here)`);
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    throw new NotFoundError(`${this.location}: ${desc.digest} not found (nothing is kept here)`);
  }

  async exists(): Promise<boolean> {
    return false;
  }

  async push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    if (content instanceof Uint8Array) {
      const actual = digestOf(content, parseDigest(desc.digest).algorithm);
      if (actual !== desc.digest || content.length !== desc.size) throw new DigestMismatchError(`${this.location}@${desc.digest}`, desc.digest, actual);
      return;
    }
    await pipeline(content, verifyingStream(desc, `${this.location}@${desc.digest}`), new Writable({ write: (_chunk, _enc, done) => done() }));
  }

  async tag(): Promise<void> {}
}
