import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_MANIFEST_SIZE, readAll } from '../content/read.js';
import { digestOf, isDigest, parseDigest } from '../oci/digest.js';
import { DigestMismatchError, InvalidContentError, InvalidDigestError, NotFoundError } from '../oci/errors.js';
import { MANIFEST_ACCEPT, MediaType, isManifestLike } from '../oci/mediatypes.js';
import { IndexSchema, type Descriptor } from '../oci/schemas.js';
import { errorForResponse, RegistryError } from './errors.js';
import { contentType, type Endpoint } from './http.js';
import { parseJsonOrUndefined } from '../util/json.js';
import { rereading, type RetryBudget } from './retry.js';
import { header, type Response } from './transport.js';

interface ManifestRead {
  bytes: Uint8Array;
  mediaType: string;
  digestHeader: string | undefined;
}

/**
 * Manifests by tag or digest: resolve (one GET, the digest computed from the bytes), probe (one
 * HEAD), put (verified; retried while distribution races another writer's blob commit),
 * delete, and the Referrers API. Manifests pushed or read here are kept, so tagging does not
 * download them again. Each operation spends the one retry budget it is given (see retry.ts).
 */
export class ManifestStore {
  /** Manifests this process pushed or read here, by digest. */
  private readonly known = new Map<string, Uint8Array>();
  /** Whether the registry answers the Referrers API (undefined: not asked yet). */
  private referrersApi: boolean | undefined;

  constructor(private readonly http: Endpoint) {}

  /** The bytes of a manifest pushed or resolved here, if any. */
  cached(digest: string): Uint8Array | undefined {
    return this.known.get(digest);
  }

  async resolve(reference: string, budget: RetryBudget): Promise<Descriptor> {
    const what = this.http.describe(reference);
    if (isDigest(reference)) {
      // By digest, HEAD tells all we need (type and size); the digest is checked when read.
      const res = await this.http.call(`/manifests/${reference}`, { method: 'HEAD', access: 'pull', headers: { accept: MANIFEST_ACCEPT }, budget });
      if (res.statusCode !== 200) await this.http.fail(res, what);
      await res.body.dump();
      const mediaType = contentType(res);
      const length = Number(header(res, 'content-length'));
      if (mediaType && isManifestLike(mediaType) && Number.isSafeInteger(length) && length > 0) return { mediaType, digest: reference, size: length };
    }
    // By tag, one GET: the digest is computed from the bytes (never taken from
    // Docker-Content-Digest, which some registries get wrong), and the bytes are kept for the
    // fetch that almost always follows. HEAD + GET would cost a request more.
    const { bytes, mediaType, digestHeader } = await this.get(reference, what, budget);
    if (isDigest(reference)) return this.verified(reference, bytes, mediaType, what);
    if (!digestHeader || !isDigest(digestHeader) || digestOf(bytes, parseDigest(digestHeader).algorithm) === digestHeader) {
      return this.verified(digestOf(bytes), bytes, mediaType, what);
    }
    // The registry says the tag is another digest: damaged on the way, or a registry that gets
    // the header wrong. Asking for that digest tells which: a registry that holds it must serve
    // bytes that hash to it (else a mismatch error); one that does not got the header wrong.
    this.http.transport.log(`${what}: Docker-Content-Digest ${digestHeader} is not the digest of the manifest received; asking for it by digest`);
    const byDigest = await this.get(digestHeader, this.http.describe(digestHeader), budget).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (!byDigest) return this.verified(digestOf(bytes), bytes, mediaType, what);
    return this.verified(digestHeader, byDigest.bytes, byDigest.mediaType, this.http.describe(digestHeader));
  }

  /**
   * A tag's (or digest's) descriptor from one HEAD, or undefined when it does not exist: the
   * cheap way to tell whether a tag moved. No bytes come back to hash, so the digest is the
   * registry's Docker-Content-Digest (fetch still verifies content against it). Without a
   * usable header or manifest type, one GET (resolve) tells instead.
   */
  async probe(reference: string, budget: RetryBudget): Promise<Descriptor | undefined> {
    const what = this.http.describe(reference);
    const res = await this.http.call(`/manifests/${reference}`, { method: 'HEAD', access: 'pull', headers: { accept: MANIFEST_ACCEPT }, budget });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    // The body is gone (HEAD has none): reading it again would crash undici.
    if (res.statusCode !== 200) throw errorForResponse(what, res.statusCode, '');
    const mediaType = contentType(res);
    const digest = header(res, 'docker-content-digest');
    const size = Number(header(res, 'content-length'));
    const usable = mediaType && isManifestLike(mediaType) && digest && isDigest(digest) && (!isDigest(reference) || digest === reference);
    if (usable && Number.isSafeInteger(size) && size > 0) return { mediaType, digest, size };
    this.http.transport.log(`${what}: HEAD gave no usable digest or manifest type; asking with GET`);
    return this.resolve(reference, budget).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined; // deleted between the two requests
      throw err;
    });
  }

  /**
   * The OCI 1.1 Referrers API: the manifests whose `subject` is `digest`, or undefined when the
   * registry does not answer the API (404; distribution 2.8), in which case the referrers tag
   * schema applies. The verdict is kept for the repository; and for the whole registry when the
   * answer is not the API's own error (a plain "404 page not found": the route does not exist),
   * so a push from 20 repositories of one registry asks once, not 20 times. A registry with the
   * API may answer 404 NAME_UNKNOWN for a repository it does not have: that verdict stays local.
   */
  async referrers(digest: string, budget: RetryBudget): Promise<Descriptor[] | undefined> {
    const { withoutReferrersApi } = this.http.session;
    if (this.referrersApi === false || withoutReferrersApi.has(this.http.registry)) return undefined;
    const what = `${this.http.location} referrers of ${digest}`;
    const res = await this.http.call(`/referrers/${digest}`, { method: 'GET', access: 'pull', headers: { accept: MediaType.OciIndex }, budget });
    if (res.statusCode === 404 || res.statusCode === 405 || res.statusCode === 400) {
      const text = await readAll(res.body as unknown as Readable, 64 * 1024).then((b) => Buffer.from(b).toString('utf8'), () => '');
      this.referrersApi = false;
      if (!isRegistryError(text)) withoutReferrersApi.add(this.http.registry);
      return undefined;
    }
    if (res.statusCode !== 200) await this.http.fail(res, what);
    const text = Buffer.from(await readAll(res.body as unknown as Readable, MAX_MANIFEST_SIZE)).toString('utf8');
    const parsed = IndexSchema.safeParse(parseJsonOrUndefined(text));
    if (!parsed.success) throw new InvalidContentError(`${what}: the registry's answer is not an image index`);
    this.referrersApi = true;
    return parsed.data.manifests ?? [];
  }

  /**
   * Delete a manifest by digest: true when deleted, false when it was not there (or a retry
   * found it gone after a first try whose answer was lost). Registries untag what pointed at
   * it (distribution removes every tag of that digest); blobs stay until garbage collection.
   */
  async delete(digest: string, budget: RetryBudget): Promise<boolean> {
    // A tag here would delete whatever manifest the tag happens to name now, or be refused.
    if (!isDigest(digest)) throw new InvalidDigestError(digest);
    const res = await this.http.call(`/manifests/${digest}`, { method: 'DELETE', access: 'delete', budget });
    // Whatever the answer, bytes held here are no proof that the registry still has them.
    this.known.delete(digest);
    if (res.statusCode === 202 || res.statusCode === 200 || res.statusCode === 204) {
      await res.body.dump();
      return true;
    }
    if (res.statusCode === 404) {
      await res.body.dump();
      return false;
    }
    return this.http.fail(res, this.http.describe(digest), 'delete');
  }

  /** Store a manifest under `reference` (its digest, or a tag), verified against `desc` first. */
  async put(desc: Descriptor, content: Readable | Uint8Array, reference: string, budget: RetryBudget): Promise<void> {
    const bytes = content instanceof Uint8Array ? content : await readAll(content, MAX_MANIFEST_SIZE);
    const actual = digestOf(bytes, parseDigest(desc.digest).algorithm);
    if (actual !== desc.digest || bytes.length !== desc.size) throw new DigestMismatchError(this.http.describe(desc.digest), desc.digest, actual);
    const transport = this.http.transport;
    let res: Response;
    for (;;) {
      res = await this.http.call(`/manifests/${reference}`, {
        method: 'PUT',
        access: 'push',
        headers: { 'content-type': desc.mediaType },
        body: bytes,
        budget,
      });
      if (res.statusCode === 201 || res.statusCode === 200) break;
      const text = await res.body.text();
      const err = errorForResponse(`${this.http.describe(reference)} (${desc.mediaType})`, res.statusCode, text, 'manifest-write');
      // distribution reads blob links that a concurrent writer of the same blob may be rewriting,
      // and then calls a blob we pushed unknown: ask again after a moment.
      const racing = err instanceof RegistryError && err.status === 400 && err.codes.some((c) => c === 'MANIFEST_BLOB_UNKNOWN' || c === 'DIGEST_INVALID');
      const retry = racing ? budget.take() : undefined;
      if (retry === undefined) throw err;
      // The other writer's commit takes tens of milliseconds, however short the configured backoff.
      const wait = Math.max(transport.backoff(retry), 250 * retry);
      transport.log(`${err.message}; trying again (retry ${retry}/${budget.limit}) in ${wait} ms`);
      await sleep(wait);
    }
    await res.body.dump();
    const stored = header(res, 'docker-content-digest');
    if (stored && isDigest(stored) && stored !== desc.digest && parseDigest(stored).algorithm === parseDigest(desc.digest).algorithm) {
      // A wrong header, or other bytes stored: what the registry serves under the reference decides.
      const served = await this.get(reference, this.http.describe(reference), budget).then((m) => digestOf(m.bytes, parseDigest(desc.digest).algorithm), () => undefined);
      if (served !== desc.digest) throw new InvalidContentError(`${this.http.describe(reference)}: registry stored the manifest as ${stored}, not ${desc.digest}`);
      transport.log(`${this.http.describe(reference)}: registry answered Docker-Content-Digest ${stored} for the manifest it holds as ${desc.digest}; ignoring the header`);
    }
    this.known.set(desc.digest, bytes);
  }

  /** Check `bytes` against `digest`, keep them for the fetch that follows, and describe them. */
  private verified(digest: string, bytes: Uint8Array, mediaType: string, what: string): Descriptor {
    const actual = digestOf(bytes, parseDigest(digest).algorithm);
    if (actual !== digest) throw new DigestMismatchError(what, digest, actual);
    this.known.set(digest, bytes);
    return { mediaType, digest, size: bytes.length };
  }

  private get(reference: string, what: string, budget: RetryBudget): Promise<ManifestRead> {
    return rereading(this.http.transport, budget, what, () => this.getOnce(reference, what, budget));
  }

  private async getOnce(reference: string, what: string, budget: RetryBudget): Promise<ManifestRead> {
    const res = await this.http.call(`/manifests/${reference}`, { method: 'GET', access: 'pull', headers: { accept: MANIFEST_ACCEPT }, budget });
    if (res.statusCode !== 200) await this.http.fail(res, what);
    const bytes = await readAll(res.body as unknown as Readable, MAX_MANIFEST_SIZE);
    let mediaType = contentType(res);
    if (!mediaType || !isManifestLike(mediaType)) {
      try {
        mediaType = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: string }).mediaType;
      } catch {
        mediaType = undefined;
      }
    }
    if (!mediaType || !isManifestLike(mediaType)) throw new InvalidContentError(`${what}: not an image manifest or index`);
    return { bytes, mediaType, digestHeader: header(res, 'docker-content-digest') };
  }
}

/** Whether a body is the distribution spec's error envelope (`{"errors": [...]}`). */
function isRegistryError(text: string): boolean {
  const body = parseJsonOrUndefined(text) as { errors?: unknown } | undefined;
  return Array.isArray(body?.errors);
}
