import { Readable, pipeline } from 'node:stream';
import { MAX_MANIFEST_SIZE, readAll } from '../content/read.js';
import { verifyingStream } from '../oci/digest.js';
import { InvalidContentError } from '../oci/errors.js';
import { MANIFEST_ACCEPT, isManifestLike } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/schemas.js';
import { ConnectionError, errorForResponse } from './errors.js';
import type { Endpoint } from './http.js';
import { rereading, type RetryBudget } from './retry.js';
import { header } from './transport.js';

/** Blobs up to this size are read and uploaded whole (in memory), so any failure can start them again. */
export const MAX_BUFFERED_BLOB = 4 * 1024 * 1024;

/**
 * Reading content by digest: manifests and small blobs whole and verified, large blobs as a
 * verified stream that resumes with Range requests; and HEAD for whether content is there.
 * Each read spends the retry budget it is given (one per operation: see retry.ts), its
 * re-reads, resumes and the transport's retries alike.
 */
export class BlobReads {
  constructor(private readonly http: Endpoint) {}

  async fetch(desc: Descriptor, budget: RetryBudget): Promise<Readable> {
    const what = this.http.describe(desc.digest);
    const manifest = isManifestLike(desc.mediaType);
    if (manifest && desc.size > MAX_MANIFEST_SIZE) {
      throw new InvalidContentError(`${what}: manifest of ${desc.size} bytes is over the ${MAX_MANIFEST_SIZE}-byte limit`);
    }
    // Manifests and small blobs are read whole and verified before anyone sees a byte, so a
    // damaged or cut-short answer is simply asked for again.
    if (manifest || desc.size <= MAX_BUFFERED_BLOB) return Readable.from([await this.fetchWhole(desc, manifest, what, budget)]);
    const verified = verifyingStream(desc, what);
    pipeline(Readable.from(this.resumableBlob(desc, await this.openBlob(desc, 0, budget), budget)), verified, () => {});
    return verified;
  }

  async exists(desc: Descriptor, budget: RetryBudget): Promise<boolean> {
    const kind = isManifestLike(desc.mediaType) ? 'manifests' : 'blobs';
    const res = await this.http.call(`/${kind}/${desc.digest}`, {
      method: 'HEAD',
      access: 'pull',
      headers: kind === 'manifests' ? { accept: `${desc.mediaType}, ${MANIFEST_ACCEPT}` } : {},
      followRedirects: true,
      budget,
    });
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    // The body is gone (HEAD has none): reading it again would crash undici.
    throw errorForResponse(this.http.describe(desc.digest), res.statusCode, '');
  }

  /** Read a manifest or small blob whole, verified; transient failures (a digest mismatch included) are retried. */
  private fetchWhole(desc: Descriptor, manifest: boolean, what: string, budget: RetryBudget): Promise<Uint8Array> {
    return rereading(this.http.transport, budget, what, async () => {
      const body = manifest ? await this.openManifest(desc, what, budget) : Readable.from(this.resumableBlob(desc, await this.openBlob(desc, 0, budget), budget));
      const verified = verifyingStream(desc, what);
      pipeline(body, verified, () => {});
      return readAll(verified, Math.max(desc.size, 1));
    });
  }

  private async openManifest(desc: Descriptor, what: string, budget: RetryBudget): Promise<Readable> {
    const res = await this.http.call(`/manifests/${desc.digest}`, {
      method: 'GET',
      access: 'pull',
      headers: { accept: `${desc.mediaType}, ${MANIFEST_ACCEPT}` },
      followRedirects: true,
      budget,
    });
    if (res.statusCode !== 200) await this.http.fail(res, what);
    return res.body as unknown as Readable;
  }

  /**
   * A blob's bytes from `offset` on: `Range: bytes=N-` when resuming (206 expected; a 200 with
   * the whole blob is skipped forward).
   */
  private async openBlob(desc: Descriptor, offset: number, budget: RetryBudget): Promise<AsyncIterable<Buffer>> {
    const res = await this.http.call(`/blobs/${desc.digest}`, {
      method: 'GET',
      access: 'pull',
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      followRedirects: true,
      budget,
    });
    if (offset > 0 && res.statusCode === 206) {
      const range = header(res, 'content-range');
      if (range && !range.startsWith(`bytes ${offset}-`)) {
        await res.body.dump();
        throw new ConnectionError(`${this.http.describe(desc.digest)}: asked to resume at byte ${offset}, registry sent ${range}`);
      }
      return res.body as AsyncIterable<Buffer>;
    }
    if (res.statusCode !== 200) await this.http.fail(res, this.http.describe(desc.digest));
    return offset > 0 ? skipBytes(res.body as AsyncIterable<Buffer>, offset) : (res.body as AsyncIterable<Buffer>);
  }

  /**
   * A blob download that survives broken connections: when the body fails or ends short, the
   * rest is asked for with a Range request (at once: no backoff), while the budget lasts. The
   * caller verifies the digest over the whole stream, so a resumed download is checked like any
   * other.
   */
  private async *resumableBlob(desc: Descriptor, first: AsyncIterable<Buffer>, budget: RetryBudget): AsyncGenerator<Buffer> {
    const transport = this.http.transport;
    let body = first;
    let offset = 0;
    for (;;) {
      let failure: unknown;
      try {
        for await (const chunk of body) {
          offset += chunk.length;
          yield chunk;
        }
      } catch (err) {
        failure = err;
      }
      if (offset >= desc.size) return; // complete (or too long: the verifier says so)
      const reason = failure ? ((failure as Error).message ?? String(failure)) : `body ended after ${offset} of ${desc.size} bytes`;
      const retry = budget.take();
      if (retry === undefined) {
        throw new ConnectionError(`${this.http.describe(desc.digest)}: download failed at byte ${offset} of ${desc.size} (${reason})`, { cause: failure });
      }
      transport.log(`${this.http.describe(desc.digest)}: download broke at byte ${offset} (${reason}); resuming with Range (retry ${retry}/${budget.limit})`);
      body = await this.openBlob(desc, offset, budget);
    }
  }
}

/** Drop the first `count` bytes of a stream. */
async function* skipBytes(stream: AsyncIterable<Buffer>, count: number): AsyncGenerator<Buffer> {
  let left = count;
  for await (const data of stream) {
    if (left >= data.length) {
      left -= data.length;
      continue;
    }
    yield left > 0 ? data.subarray(left) : data;
    left = 0;
  }
}
