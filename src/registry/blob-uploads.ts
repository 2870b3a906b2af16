import { Readable, pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { readAll } from '../content/read.js';
import { digestOf, parseDigest, verifyingStream } from '../oci/digest.js';
import { DigestMismatchError, isTransientError } from '../oci/errors.js';
import type { Descriptor } from '../oci/schemas.js';
import { MAX_BUFFERED_BLOB, type BlobReads } from './blob-reads.js';
import { AuthError, ConnectionError, errorForResponse, RegistryError } from './errors.js';
import type { Endpoint } from './http.js';
import { ReplayWindow } from './replay-window.js';
import type { RetryBudget } from './retry.js';
import { header, type Response } from './transport.js';

/** What an interrupted PATCH can go on from without reading the source again (see ReplayWindow). */
export const RESUME_WINDOW = 8 * 1024 * 1024;

/**
 * Writing blobs: monolithic (in memory, restartable), streamed (one PUT), or resumable
 * (streamed PATCHes that go on where the registry says it is); cross-repository mounts; upload
 * sessions cancelled when the registry opened one we do not use. One upload spends one retry
 * budget (see retry.ts): its restarts, PATCH resumes, and the transport's retries of all its
 * requests.
 */
export class BlobUploads {
  constructor(private readonly http: Endpoint, private readonly reads: BlobReads) {}

  /**
   * Upload a blob. Blobs up to min(chunkThreshold, 4 MiB) are held in memory (verified first)
   * and sent monolithically, so a failed upload starts again from POST; larger ones up to
   * chunkThreshold are streamed in one PUT, larger still in streamed PATCHes that resume where
   * the registry says it is. Before giving up, the registry is asked whether it has the blob
   * after all (a commit whose answer was lost).
   */
  async upload(desc: Descriptor, content: Readable | Uint8Array, budget: RetryBudget): Promise<void> {
    const what = this.http.describe(desc.digest);
    const { transport, chunkThreshold } = this.http.session;
    let data: Uint8Array | undefined = content instanceof Uint8Array ? content : undefined;
    if (!data && desc.size <= Math.min(chunkThreshold, MAX_BUFFERED_BLOB)) {
      const verified = verifyingStream(desc, what);
      pipeline(content as Readable, verified, () => {});
      data = await readAll(verified, Math.max(desc.size, 1));
    }
    if (data) {
      const actual = digestOf(data, parseDigest(desc.digest).algorithm);
      if (actual !== desc.digest || data.length !== desc.size) throw new DigestMismatchError(what, desc.digest, actual);
    }
    for (;;) {
      try {
        if (data && data.length <= chunkThreshold) await this.uploadMonolithic(desc, data, what, budget);
        else if (!data && desc.size <= chunkThreshold) await this.uploadStreamed(desc, content as Readable, what, budget);
        else await this.uploadChunked(desc, data ? Readable.from([Buffer.from(data.buffer, data.byteOffset, data.byteLength)]) : (content as Readable), what, budget);
        return;
      } catch (err) {
        if (!data) (content as Readable).destroy();
        // A mismatch here is the source's fault (we verify before sending): never retried.
        const retryable = !(err instanceof DigestMismatchError) && (isTransientError(err) || isUploadGone(err));
        if (retryable && (await this.reads.exists(desc, budget).catch(() => false))) {
          transport.log(`${what}: upload failed (${(err as Error).message}) but the registry has the blob`);
          return;
        }
        const retry = retryable && data ? budget.take() : undefined;
        if (retry === undefined) throw err;
        const wait = transport.backoff(retry);
        transport.log(`${what}: upload failed (${(err as Error).message}); starting it again (retry ${retry}/${budget.limit}) in ${wait} ms`);
        await sleep(wait);
      }
    }
  }

  /** Mount a blob of repository `from` (same registry): true when mounted, false when the registry declined. */
  async mount(desc: Descriptor, from: string, budget: RetryBudget): Promise<boolean> {
    const query = new URLSearchParams({ mount: desc.digest, from });
    let res: Response;
    try {
      res = await this.http.call(`/blobs/uploads/?${query}`, { method: 'POST', access: 'push', alsoPull: [from], budget });
    } catch (err) {
      if (err instanceof AuthError) return false; // no read access to the source: copy the bytes instead
      throw err;
    }
    await res.body.dump();
    if (res.statusCode === 201) return true;
    // 202: the registry opened an ordinary upload instead (it could not or would not mount).
    if (res.statusCode === 202) await this.cancelUpload(res, budget);
    else this.http.transport.log(`${this.http.location}: mount of ${desc.digest} from ${from} declined with HTTP ${res.statusCode}`);
    return false;
  }

  /** POST: open an upload session; returns its location. */
  private async startUpload(what: string, budget: RetryBudget): Promise<URL> {
    const start = await this.http.call('/blobs/uploads/', { method: 'POST', access: 'push', headers: { 'content-length': '0' }, budget });
    if (start.statusCode !== 202) await this.http.fail(start, `${what} (upload)`, 'write');
    await start.body.dump();
    const location = header(start, 'location');
    if (!location) throw new RegistryError(`${what}: registry started an upload without a Location`, start.statusCode);
    return this.http.resolveLocation(location);
  }

  /** POST then one PUT with the whole (verified, in-memory) body: two requests, both replayable. */
  private async uploadMonolithic(desc: Descriptor, data: Uint8Array, what: string, budget: RetryBudget): Promise<void> {
    const url = await this.startUpload(what, budget);
    url.searchParams.set('digest', desc.digest);
    const res = await this.http.call(url.toString(), {
      method: 'PUT',
      access: 'push',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: data,
      budget,
    });
    await expectCommitted(res, what);
  }

  /**
   * POST then one PUT streaming the body: nothing held in memory, and the source is read while
   * the registry writes. The registry verifies the digest it is given before it commits (a
   * mismatch is its 400 DIGEST_INVALID); no second hash here, as every Target's fetch already
   * verifies what it streams (bench/: one sha256 pass of the two was ~12% of a copy's CPU). Not
   * replayable: a failure goes to the caller, which can read its source again (copyGraph does).
   * See DEFAULT_CHUNK_THRESHOLD for why this is the default up to 512 MiB.
   */
  private async uploadStreamed(desc: Descriptor, content: Readable, what: string, budget: RetryBudget): Promise<void> {
    const url = await this.startUpload(what, budget);
    url.searchParams.set('digest', desc.digest);
    let sourceError: unknown;
    content.once('error', (err) => {
      sourceError = err;
    });
    let res: Response;
    try {
      res = await this.http.call(url.toString(), {
        method: 'PUT',
        access: 'push',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: content,
        budget,
      });
    } catch (err) {
      throw sourceError ?? err;
    }
    if (sourceError) {
      await res.body.dump();
      throw sourceError;
    }
    await expectCommitted(res, what);
  }

  /**
   * Large blobs: the body streamed in PATCHes of up to `chunkSize` bytes (by default one for the
   * whole blob, as fast as a streamed PUT), with Content-Range, then PUT ?digest=. Nothing is held
   * but the last RESUME_WINDOW bytes sent. When a PATCH fails, the registry is asked how much it
   * has (GET on the upload location, `Range: 0-N`) and the body goes on from there. When the
   * registry has dropped the session, or holds less than the window can give again, the error is
   * transient and the blob starts again from a fresh read of its source. (distribution drops a
   * session whose PATCH arrived in part, or whose answer was lost: the location we hold is then
   * stale, and distribution cancels the upload on seeing it. Registries that keep what arrived,
   * as the distribution spec describes, resume.)
   */
  private async uploadChunked(desc: Descriptor, content: Readable, what: string, budget: RetryBudget): Promise<void> {
    let location = await this.startUpload(what, budget);
    const source = new ReplayWindow(content, RESUME_WINDOW);
    for (let offset = 0; offset < desc.size; ) {
      const end = Math.min(desc.size, offset + this.http.session.chunkSize);
      location = await this.sendRange(location, source, { start: offset, end }, desc, budget);
      offset = end;
    }
    if (!(await source.expectEnd())) throw new DigestMismatchError(what, desc.digest, `more than ${desc.size} bytes`);
    const url = new URL(location);
    url.searchParams.set('digest', desc.digest);
    const res = await this.http.call(url.toString(), { method: 'PUT', access: 'push', headers: { 'content-length': '0' }, budget });
    await expectCommitted(res, what);
  }

  /** PATCH bytes [start, end) of the blob, resuming where the registry says it is after a failure; returns the next location. */
  private async sendRange(location: URL, source: ReplayWindow, { start, end }: { start: number; end: number }, desc: Descriptor, budget: RetryBudget): Promise<URL> {
    const transport = this.http.transport;
    const what = this.http.describe(desc.digest);
    for (let from = start; ; ) {
      await source.idle();
      let failure: unknown;
      try {
        const res = await this.http.call(location.toString(), {
          method: 'PATCH',
          access: 'push',
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${end - 1}`, 'content-length': String(end - from) },
          body: Readable.from(source.range(from, end), { objectMode: false }),
          // The registry may have taken part of it: ask, rather than send the same bytes twice.
          replayable: false,
          budget,
        });
        if (res.statusCode === 202) {
          await res.body.dump();
          const next = header(res, 'location');
          if (!next) throw new RegistryError(`${what}: registry accepted a chunk without a Location`, res.statusCode);
          return new URL(next, location);
        }
        failure = errorForResponse(`${what} (upload chunk at byte ${from})`, res.statusCode, await res.body.text().catch(() => ''), 'write');
      } catch (err) {
        failure = err;
      }
      await source.idle();
      if (source.sourceError) throw source.sourceError;
      if (source.exhausted) throw new DigestMismatchError(what, desc.digest, `${source.end} bytes, expected ${desc.size}`);
      const retry = isTransientError(failure) ? budget.take() : undefined;
      if (retry === undefined) throw failure;
      const status = await this.uploadStatus(location, from, budget);
      if (!status || status.received < Math.max(start, source.start) || status.received > end) {
        throw new ConnectionError(`${what}: upload session lost after a failed chunk at byte ${from} (${(failure as Error).message})`, { cause: failure });
      }
      transport.log(`${what}: chunk at byte ${from} failed (${(failure as Error).message}); registry has ${status.received} bytes, resuming there (retry ${retry}/${budget.limit})`);
      from = status.received;
      location = status.location;
      if (from === end) return location;
    }
  }

  /** How many bytes an upload session holds (`Range: 0-N`), or undefined when the session is gone. */
  private async uploadStatus(location: URL, offset: number, budget: RetryBudget): Promise<{ received: number; location: URL } | undefined> {
    let res: Response;
    try {
      res = await this.http.call(location.toString(), { method: 'GET', access: 'push', budget });
    } catch {
      return undefined;
    }
    await res.body.dump();
    if (res.statusCode !== 204 && res.statusCode !== 200) return undefined;
    const m = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
    if (!m) return undefined;
    const end = Number(m[1]);
    // "0-0" is both "nothing" and "one byte" in distribution's answer: nothing, when nothing was
    // acknowledged yet (a session holding one stray byte would refuse the next PATCH anyway).
    if (end === 0 && offset > 0) return undefined;
    const next = header(res, 'location');
    return { received: end === 0 ? 0 : end + 1, location: next ? new URL(next, location) : location };
  }

  private async cancelUpload(res: Response, budget: RetryBudget): Promise<void> {
    const location = header(res, 'location');
    if (!location) return;
    try {
      const url = await this.http.resolveLocation(location);
      const del = await this.http.call(url.toString(), { method: 'DELETE', access: 'push', budget });
      await del.body.dump();
    } catch {
      // An abandoned upload is the registry's to collect; nothing of ours is left half-written.
    }
  }
}

/** The answer to an upload's final PUT: 201, or the registry's error. */
async function expectCommitted(res: Response, what: string): Promise<void> {
  if (res.statusCode !== 201) {
    const text = await res.body.text().catch(() => '');
    throw errorForResponse(`${what} (upload)`, res.statusCode, text, 'write');
  }
  await res.body.dump();
}

/** The registry forgot the upload session (after a half-received request, or a commit it already did). */
function isUploadGone(err: unknown): boolean {
  if (!(err instanceof RegistryError)) return false;
  return err.status === 404 || err.status === 416 || err.codes.includes('BLOB_UPLOAD_UNKNOWN') || err.codes.includes('BLOB_UPLOAD_INVALID');
}
