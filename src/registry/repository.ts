import { Readable, pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Mountable, ReadOnlyTarget, Target } from '../content/target.js';
import { MAX_MANIFEST_SIZE, readAll } from '../content/read.js';
import { digestOf, isDigest, parseDigest, verifyingStream } from '../oci/digest.js';
import { DigestMismatchError, InvalidContentError, InvalidDigestError, isTransientError, NotFoundError } from '../oci/errors.js';
import { MANIFEST_ACCEPT, MediaType, isManifestLike } from '../oci/mediatypes.js';
import { IndexSchema, type Descriptor } from '../oci/schemas.js';
import type { RegistryClient } from './client.js';
import { AuthError, ConnectionError, errorForResponse, RegistryError } from './errors.js';
import { header, type Response, type SendOptions } from './transport.js';

type Access = 'pull' | 'push' | 'delete';

/** Blobs up to this size are read and uploaded whole (in memory), so any failure can start them again. */
const MAX_BUFFERED_BLOB = 4 * 1024 * 1024;

/** Entries per page of tags/list and _catalog: distribution refuses more (its catalog.maxentries) with 400. */
const DEFAULT_PAGE_SIZE = 1000;

/** The token scope of the catalog (distribution's `registry:catalog:*`). */
const CATALOG_SCOPE = 'registry:catalog:*';

interface CallOptions extends SendOptions {
  access: Access;
  /** Other repositories the request reads from (cross-repository mount). */
  alsoPull?: string[];
  /** Token scopes to ask for instead of the repository's (the catalog belongs to no repository). */
  scopes?: string[];
  /** `pathOrUrl` is a path from the origin (`/v2/`), not one under `/v2/<name>`. */
  absolutePath?: boolean;
}

export interface ListOptions {
  /** Entries asked for per page (`n`); default 1000. */
  pageSize?: number;
}

export interface CatalogOptions extends ListOptions {
  /** Only this repository and those under `prefix/` (`apps/team`: `apps/team`, `apps/team/web`, not `apps/teamx`). */
  prefix?: string;
}

/**
 * One repository of a registry, speaking the OCI distribution API. A `Target`: resolve, fetch
 * (verified against the descriptor), exists, push (streamed blobs, verified manifests), tag;
 * and `Mountable`: blobs of another repository of the same registry move without their bytes.
 */
export class Repository implements Target, Mountable {
  readonly location: string;
  /** Manifests this process pushed or read here, so tagging does not download them again. */
  private readonly manifests = new Map<string, Uint8Array>();
  /** Whether the registry answers the Referrers API (undefined: not asked yet). */
  private referrersApi: boolean | undefined;

  constructor(private readonly client: RegistryClient, readonly registry: string, readonly name: string) {
    this.location = `${registry}/${name}`;
  }

  async resolve(reference: string): Promise<Descriptor> {
    const what = this.describe(reference);
    if (isDigest(reference)) {
      // By digest, HEAD tells all we need (type and size); the digest is checked when read.
      const res = await this.call(`/manifests/${reference}`, { method: 'HEAD', access: 'pull', headers: { accept: MANIFEST_ACCEPT } });
      if (res.statusCode !== 200) await this.fail(res, what);
      await res.body.dump();
      const mediaType = contentType(res);
      const length = Number(header(res, 'content-length'));
      if (mediaType && isManifestLike(mediaType) && Number.isSafeInteger(length) && length > 0) return { mediaType, digest: reference, size: length };
    }
    // By tag, one GET: the digest is computed from the bytes (never taken from
    // Docker-Content-Digest, which some registries get wrong), and the bytes are kept for the
    // fetch that almost always follows. HEAD + GET would cost a request more.
    const { bytes, mediaType, digestHeader } = await this.getManifest(reference, what);
    if (isDigest(reference)) return this.verifiedManifest(reference, bytes, mediaType, what);
    if (!digestHeader || !isDigest(digestHeader) || digestOf(bytes, parseDigest(digestHeader).algorithm) === digestHeader) {
      return this.verifiedManifest(digestOf(bytes), bytes, mediaType, what);
    }
    // The registry says the tag is another digest: damaged on the way, or a registry that gets
    // the header wrong. Asking for that digest tells which: a registry that holds it must serve
    // bytes that hash to it (else a mismatch error); one that does not got the header wrong.
    this.client.transport.log(`${what}: Docker-Content-Digest ${digestHeader} is not the digest of the manifest received; asking for it by digest`);
    const byDigest = await this.getManifest(digestHeader, this.describe(digestHeader)).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (!byDigest) return this.verifiedManifest(digestOf(bytes), bytes, mediaType, what);
    return this.verifiedManifest(digestHeader, byDigest.bytes, byDigest.mediaType, this.describe(digestHeader));
  }

  /** Check `bytes` against `digest`, keep them for the fetch that follows, and describe them. */
  private verifiedManifest(digest: string, bytes: Uint8Array, mediaType: string, what: string): Descriptor {
    const actual = digestOf(bytes, parseDigest(digest).algorithm);
    if (actual !== digest) throw new DigestMismatchError(what, digest, actual);
    this.manifests.set(digest, bytes);
    return { mediaType, digest, size: bytes.length };
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    const what = this.describe(desc.digest);
    const cached = this.manifests.get(desc.digest);
    if (cached) return Readable.from([cached]);
    const manifest = isManifestLike(desc.mediaType);
    if (manifest && desc.size > MAX_MANIFEST_SIZE) {
      throw new InvalidContentError(`${what}: manifest of ${desc.size} bytes is over the ${MAX_MANIFEST_SIZE}-byte limit`);
    }
    // Manifests and small blobs are read whole and verified before anyone sees a byte, so a
    // damaged or cut-short answer is simply asked for again.
    if (manifest || desc.size <= MAX_BUFFERED_BLOB) return Readable.from([await this.fetchWhole(desc, manifest, what)]);
    const verified = verifyingStream(desc, what);
    pipeline(Readable.from(this.resumableBlob(desc, await this.openBlob(desc, 0))), verified, () => {});
    return verified;
  }

  /** Read a manifest or small blob whole, verified; transient failures (a digest mismatch included) are retried. */
  private fetchWhole(desc: Descriptor, manifest: boolean, what: string): Promise<Uint8Array> {
    return this.rereading(what, async () => {
      const body = manifest ? await this.openManifest(desc, what) : Readable.from(this.resumableBlob(desc, await this.openBlob(desc, 0)));
      const verified = verifyingStream(desc, what);
      pipeline(body, verified, () => {});
      return readAll(verified, Math.max(desc.size, 1));
    });
  }

  /** Run a whole read again (a bounded number of times) when it failed in a way a new try may cure. */
  private async rereading<T>(what: string, read: () => Promise<T>): Promise<T> {
    const transport = this.client.transport;
    for (let attempt = 1; ; attempt++) {
      try {
        return await read();
      } catch (err) {
        if (attempt >= transport.attempts || !isTransientError(err)) throw err;
        const wait = transport.backoff(attempt);
        transport.log(`${what}: ${(err as Error).message}; reading it again (retry ${attempt}/${transport.attempts - 1}) in ${wait} ms`);
        await sleep(wait);
      }
    }
  }

  private async openManifest(desc: Descriptor, what: string): Promise<Readable> {
    const res = await this.call(`/manifests/${desc.digest}`, {
      method: 'GET',
      access: 'pull',
      headers: { accept: `${desc.mediaType}, ${MANIFEST_ACCEPT}` },
      followRedirects: true,
    });
    if (res.statusCode !== 200) await this.fail(res, what);
    return res.body as unknown as Readable;
  }

  /**
   * A blob's bytes from `offset` on: `Range: bytes=N-` when resuming (206 expected; a 200 with
   * the whole blob is skipped forward).
   */
  private async openBlob(desc: Descriptor, offset: number): Promise<AsyncIterable<Buffer>> {
    const res = await this.call(`/blobs/${desc.digest}`, {
      method: 'GET',
      access: 'pull',
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      followRedirects: true,
    });
    if (offset > 0 && res.statusCode === 206) {
      const range = header(res, 'content-range');
      if (range && !range.startsWith(`bytes ${offset}-`)) {
        await res.body.dump();
        throw new ConnectionError(`${this.describe(desc.digest)}: asked to resume at byte ${offset}, registry sent ${range}`);
      }
      return res.body as AsyncIterable<Buffer>;
    }
    if (res.statusCode !== 200) await this.fail(res, this.describe(desc.digest));
    return offset > 0 ? skipBytes(res.body as AsyncIterable<Buffer>, offset) : (res.body as AsyncIterable<Buffer>);
  }

  /**
   * A blob download that survives broken connections: when the body fails or ends short, the
   * rest is asked for with a Range request, up to the transport's attempts. The caller verifies
   * the digest over the whole stream, so a resumed download is checked like any other.
   */
  private async *resumableBlob(desc: Descriptor, first: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const transport = this.client.transport;
    let body = first;
    let offset = 0;
    for (let attempt = 1; ; attempt++) {
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
      if (attempt >= transport.attempts) {
        throw new ConnectionError(`${this.describe(desc.digest)}: download failed at byte ${offset} of ${desc.size} (${reason})`, { cause: failure });
      }
      transport.log(`${this.describe(desc.digest)}: download broke at byte ${offset} (${reason}); resuming with Range`);
      body = await this.openBlob(desc, offset);
    }
  }

  async exists(desc: Descriptor): Promise<boolean> {
    const kind = isManifestLike(desc.mediaType) ? 'manifests' : 'blobs';
    const res = await this.call(`/${kind}/${desc.digest}`, {
      method: 'HEAD',
      access: 'pull',
      headers: kind === 'manifests' ? { accept: `${desc.mediaType}, ${MANIFEST_ACCEPT}` } : {},
      followRedirects: true,
    });
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    // The body is gone (HEAD has none): reading it again would crash undici.
    throw errorForResponse(this.describe(desc.digest), res.statusCode, '');
  }

  async push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    if (isManifestLike(desc.mediaType)) return this.putManifest(desc, content, desc.digest);
    return this.uploadBlob(desc, content);
  }

  async tag(desc: Descriptor, reference: string): Promise<void> {
    const bytes = this.manifests.get(desc.digest) ?? (await readAll(await this.fetch(desc), MAX_MANIFEST_SIZE));
    await this.putManifest(desc, bytes, reference);
  }

  async mountFrom(desc: Descriptor, source: ReadOnlyTarget): Promise<boolean> {
    if (!(source instanceof Repository) || source.registry !== this.registry || source.name === this.name) return false;
    if (isManifestLike(desc.mediaType)) return false;
    const query = new URLSearchParams({ mount: desc.digest, from: source.name });
    let res: Response;
    try {
      res = await this.call(`/blobs/uploads/?${query}`, { method: 'POST', access: 'push', alsoPull: [source.name] });
    } catch (err) {
      if (err instanceof AuthError) return false; // no read access to the source: copy the bytes instead
      throw err;
    }
    await res.body.dump();
    if (res.statusCode === 201) return true;
    // 202: the registry opened an ordinary upload instead (it could not or would not mount).
    if (res.statusCode === 202) await this.cancelUpload(res);
    else this.client.transport.log(`${this.location}: mount of ${desc.digest} from ${source.name} declined with HTTP ${res.statusCode}`);
    return false;
  }

  /**
   * A tag's (or digest's) descriptor from one HEAD, or undefined when it does not exist: the
   * cheap way to tell whether a tag moved. No bytes come back to hash, so the digest is the
   * registry's Docker-Content-Digest (fetch still verifies content against it). Without a
   * usable header or manifest type, one GET (resolve) tells instead.
   */
  async probe(reference: string): Promise<Descriptor | undefined> {
    const what = this.describe(reference);
    const res = await this.call(`/manifests/${reference}`, { method: 'HEAD', access: 'pull', headers: { accept: MANIFEST_ACCEPT } });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    // The body is gone (HEAD has none): reading it again would crash undici.
    if (res.statusCode !== 200) throw errorForResponse(what, res.statusCode, '');
    const mediaType = contentType(res);
    const digest = header(res, 'docker-content-digest');
    const size = Number(header(res, 'content-length'));
    const usable = mediaType && isManifestLike(mediaType) && digest && isDigest(digest) && (!isDigest(reference) || digest === reference);
    if (usable && Number.isSafeInteger(size) && size > 0) return { mediaType, digest, size };
    this.client.transport.log(`${what}: HEAD gave no usable digest or manifest type; asking with GET`);
    return this.resolve(reference).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined; // deleted between the two requests
      throw err;
    });
  }

  /**
   * The OCI 1.1 Referrers API: the manifests whose `subject` is `digest`, or undefined when the
   * registry does not answer the API (404; distribution 2.8), in which case the referrers tag
   * schema applies. The verdict is kept: one probe per repository.
   */
  async referrers(digest: string): Promise<Descriptor[] | undefined> {
    if (this.referrersApi === false) return undefined;
    const what = `${this.location} referrers of ${digest}`;
    const res = await this.call(`/referrers/${digest}`, { method: 'GET', access: 'pull', headers: { accept: MediaType.OciIndex } });
    if (res.statusCode === 404 || res.statusCode === 405 || res.statusCode === 400) {
      await res.body.dump();
      this.referrersApi = false;
      return undefined;
    }
    if (res.statusCode !== 200) await this.fail(res, what);
    const text = Buffer.from(await readAll(res.body as unknown as Readable, MAX_MANIFEST_SIZE)).toString('utf8');
    const parsed = IndexSchema.safeParse(parseJson(text));
    if (!parsed.success) throw new InvalidContentError(`${what}: the registry's answer is not an image index`);
    this.referrersApi = true;
    return parsed.data.manifests ?? [];
  }

  /**
   * Delete a manifest by digest: true when deleted, false when it was not there (or a retry
   * found it gone after a first try whose answer was lost). Registries untag what pointed at
   * it (distribution removes every tag of that digest); blobs stay until garbage collection.
   */
  async deleteManifest(digest: string): Promise<boolean> {
    // A tag here would delete whatever manifest the tag happens to name now, or be refused.
    if (!isDigest(digest)) throw new InvalidDigestError(digest);
    const res = await this.call(`/manifests/${digest}`, { method: 'DELETE', access: 'delete' });
    // Whatever the answer, bytes held here are no proof that the registry still has them.
    this.manifests.delete(digest);
    if (res.statusCode === 202 || res.statusCode === 200 || res.statusCode === 204) {
      await res.body.dump();
      return true;
    }
    if (res.statusCode === 404) {
      await res.body.dump();
      return false;
    }
    return this.fail(res, this.describe(digest), 'delete');
  }

  /**
   * List every tag, following the `Link` header's pages (`pageSize` tags a page; distribution
   * 2.8 ignores it and sends one page, distribution 3 and most others page).
   */
  async tags(options: ListOptions = {}): Promise<string[]> {
    const n = pageSize(options.pageSize);
    return this.list(`/v2/${this.name}/tags/list?n=${n}`, 'tags', { method: 'GET', access: 'pull' }, `${this.location} tags`);
  }

  /**
   * Every item of a paginated list (`tags`, `repositories`): GET `first` (a path from the
   * origin), then each `Link: <...>; rel="next"` page, resolved against the page it came with.
   */
  private async list(first: string, key: 'tags' | 'repositories', opts: CallOptions, what: string): Promise<string[]> {
    const items: string[] = [];
    const seen = new Set<string>();
    let page: URL | undefined = new URL(first, await this.client.transport.origin(this.registry));
    while (page) {
      // A registry whose links go round in circles would otherwise be listed forever.
      if (seen.has(page.href)) throw new RegistryError(`${what}: the registry's next-page link leads back to a page already read (${page.pathname}${page.search})`, 0);
      seen.add(page.href);
      const current: URL = page;
      // A page cut short or damaged on the way does not parse: it is read again, like a manifest.
      const { body, link } = await this.rereading(what, async () => {
        const res = await this.call(current.href, opts);
        if (res.statusCode !== 200) await this.fail(res, what);
        const text = await res.body.text();
        try {
          return { body: JSON.parse(text) as Record<string, unknown> | null, link: res.headers.link };
        } catch {
          throw new ConnectionError(`${what}: the registry's answer is not JSON (cut short or damaged on the way?)`);
        }
      });
      const values = body?.[key];
      if (Array.isArray(values)) items.push(...values.filter((v): v is string => typeof v === 'string'));
      page = nextPage(link, current, what);
    }
    return items;
  }

  /** GET /v2/ with credentials: proves the registry answers and accepts them. */
  static async ping(client: RegistryClient, registry: string): Promise<void> {
    const repo = new Repository(client, registry, '');
    const res = await repo.call('/v2/', { method: 'GET', access: 'pull', absolutePath: true });
    await res.body.dump();
    if (res.statusCode === 401) throw new AuthError(`${registry}: credentials missing or refused`, 401);
    if (res.statusCode !== 200) throw new RegistryError(`${registry}: /v2/ answered HTTP ${res.statusCode}`, res.statusCode);
  }

  /**
   * The repositories of a registry (GET /v2/_catalog, every page), or those under `prefix`.
   * Filtered here: the API has no prefix query, and not every registry sorts its answer.
   */
  static async catalog(client: RegistryClient, registry: string, options: CatalogOptions = {}): Promise<string[]> {
    const repo = new Repository(client, registry, '');
    const n = pageSize(options.pageSize);
    const what = `${registry} catalog`;
    let names: string[];
    try {
      names = await repo.list(`/v2/_catalog?n=${n}`, 'repositories', { method: 'GET', access: 'pull', scopes: [CATALOG_SCOPE] }, what);
    } catch (err) {
      // Docker Hub, GHCR, ECR and others have no catalog, or none for these credentials:
      // 404, or 401/403 even with a fresh token for registry:catalog:*.
      if (err instanceof NotFoundError || (err instanceof AuthError && (err.status === 401 || err.status === 403))) throw catalogUnavailable(registry, what, err);
      throw err;
    }
    const prefix = options.prefix?.replace(/\/+$/, '');
    if (!prefix) return names;
    return names.filter((name) => name === prefix || name.startsWith(`${prefix}/`));
  }

  private async putManifest(desc: Descriptor, content: Readable | Uint8Array, reference: string): Promise<void> {
    const bytes = content instanceof Uint8Array ? content : await readAll(content, MAX_MANIFEST_SIZE);
    const actual = digestOf(bytes, parseDigest(desc.digest).algorithm);
    if (actual !== desc.digest || bytes.length !== desc.size) throw new DigestMismatchError(this.describe(desc.digest), desc.digest, actual);
    const transport = this.client.transport;
    let res: Response;
    for (let attempt = 1; ; attempt++) {
      res = await this.call(`/manifests/${reference}`, {
        method: 'PUT',
        access: 'push',
        headers: { 'content-type': desc.mediaType },
        body: bytes,
      });
      if (res.statusCode === 201 || res.statusCode === 200) break;
      const text = await res.body.text();
      const err = errorForResponse(`${this.describe(reference)} (${desc.mediaType})`, res.statusCode, text, 'manifest-write');
      // distribution reads blob links that a concurrent writer of the same blob may be rewriting,
      // and then calls a blob we pushed unknown: ask again after a moment.
      const racing = err instanceof RegistryError && err.status === 400 && err.codes.some((c) => c === 'MANIFEST_BLOB_UNKNOWN' || c === 'DIGEST_INVALID');
      if (!racing || attempt >= transport.attempts) throw err;
      // The other writer's commit takes tens of milliseconds, however short the configured backoff.
      const wait = Math.max(transport.backoff(attempt), 250 * attempt);
      transport.log(`${err.message}; trying again (retry ${attempt}/${transport.attempts - 1}) in ${wait} ms`);
      await sleep(wait);
    }
    await res.body.dump();
    const stored = header(res, 'docker-content-digest');
    if (stored && isDigest(stored) && stored !== desc.digest && parseDigest(stored).algorithm === parseDigest(desc.digest).algorithm) {
      // A wrong header, or other bytes stored: what the registry serves under the reference decides.
      const served = await this.getManifest(reference, this.describe(reference)).then((m) => digestOf(m.bytes, parseDigest(desc.digest).algorithm), () => undefined);
      if (served !== desc.digest) throw new InvalidContentError(`${this.describe(reference)}: registry stored the manifest as ${stored}, not ${desc.digest}`);
      transport.log(`${this.describe(reference)}: registry answered Docker-Content-Digest ${stored} for the manifest it holds as ${desc.digest}; ignoring the header`);
    }
    this.manifests.set(desc.digest, bytes);
  }

  /**
   * Upload a blob. Blobs up to min(chunkThreshold, 4 MiB) are held in memory (verified first)
   * and sent monolithically, so a failed upload starts again from POST; larger ones up to
   * chunkThreshold are streamed in one PUT, larger still in chunks that resume where the
   * registry says it is. Before giving up, the registry is
   * asked whether it has the blob after all (a commit whose answer was lost).
   */
  private async uploadBlob(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    const what = this.describe(desc.digest);
    const transport = this.client.transport;
    let data: Uint8Array | undefined = content instanceof Uint8Array ? content : undefined;
    if (!data && desc.size <= Math.min(this.client.chunkThreshold, MAX_BUFFERED_BLOB)) {
      const verified = verifyingStream(desc, what);
      pipeline(content as Readable, verified, () => {});
      data = await readAll(verified, Math.max(desc.size, 1));
    }
    if (data) {
      const actual = digestOf(data, parseDigest(desc.digest).algorithm);
      if (actual !== desc.digest || data.length !== desc.size) throw new DigestMismatchError(what, desc.digest, actual);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        if (data && data.length <= this.client.chunkThreshold) await this.uploadMonolithic(desc, data, what);
        else if (!data && desc.size <= this.client.chunkThreshold) await this.uploadStreamed(desc, content as Readable, what);
        else await this.uploadChunked(desc, data ? Readable.from([Buffer.from(data)]) : (content as Readable), what);
        return;
      } catch (err) {
        if (!data) (content as Readable).destroy();
        // A mismatch here is the source's fault (we verify before sending): never retried.
        const retryable = !(err instanceof DigestMismatchError) && (isTransientError(err) || isUploadGone(err));
        if (retryable && (await this.exists(desc).catch(() => false))) {
          transport.log(`${what}: upload failed (${(err as Error).message}) but the registry has the blob`);
          return;
        }
        if (!retryable || !data || attempt >= transport.attempts) throw err;
        const wait = transport.backoff(attempt);
        transport.log(`${what}: upload failed (${(err as Error).message}); starting it again (retry ${attempt}/${transport.attempts - 1}) in ${wait} ms`);
        await sleep(wait);
      }
    }
  }

  /** POST: open an upload session; returns its location. */
  private async startUpload(what: string): Promise<URL> {
    const start = await this.call('/blobs/uploads/', { method: 'POST', access: 'push', headers: { 'content-length': '0' } });
    if (start.statusCode !== 202) await this.fail(start, `${what} (upload)`, 'write');
    await start.body.dump();
    const location = header(start, 'location');
    if (!location) throw new RegistryError(`${what}: registry started an upload without a Location`, start.statusCode);
    return new URL(location, await this.client.transport.origin(this.registry));
  }

  /** POST then one PUT with the whole (verified, in-memory) body: two requests, both replayable. */
  private async uploadMonolithic(desc: Descriptor, data: Uint8Array, what: string): Promise<void> {
    const url = await this.startUpload(what);
    url.searchParams.set('digest', desc.digest);
    const res = await this.call(url.toString(), {
      method: 'PUT',
      access: 'push',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: data,
    });
    await this.expectCommitted(res, what);
  }

  /**
   * POST then one PUT streaming the body: nothing held in memory, and the source is read while
   * the registry writes. The registry verifies the digest it is given before it commits (a
   * mismatch is its 400 DIGEST_INVALID); no second hash here, as every Target's fetch already
   * verifies what it streams (bench/: one sha256 pass of the two was ~12% of a copy's CPU). Not
   * replayable: a failure goes to the caller, which can read its source again (copyGraph does).
   * See DEFAULT_CHUNK_THRESHOLD for why this is the default up to 512 MiB.
   */
  private async uploadStreamed(desc: Descriptor, content: Readable, what: string): Promise<void> {
    const url = await this.startUpload(what);
    url.searchParams.set('digest', desc.digest);
    let sourceError: unknown;
    content.once('error', (err) => {
      sourceError = err;
    });
    let res: Response;
    try {
      res = await this.call(url.toString(), {
        method: 'PUT',
        access: 'push',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: content,
      });
    } catch (err) {
      throw sourceError ?? err;
    }
    if (sourceError) {
      await res.body.dump();
      throw sourceError;
    }
    await this.expectCommitted(res, what);
  }

  /** The answer to an upload's final PUT: 201, or the registry's error. */
  private async expectCommitted(res: Response, what: string): Promise<void> {
    if (res.statusCode !== 201) {
      const text = await res.body.text().catch(() => '');
      throw errorForResponse(`${what} (upload)`, res.statusCode, text, 'write');
    }
    await res.body.dump();
  }

  /**
   * Large blobs: PATCH chunks with Content-Range, then PUT ?digest=. One chunk is held in memory
   * at a time. When a PATCH fails, the registry is asked how much it has (GET on the upload
   * location, `Range: 0-N`) and the chunk goes on from there. When the registry has dropped the
   * session (distribution does when a chunk arrived in part, or when its answer was lost: the
   * location we hold is then stale and distribution cancels the upload on seeing it), the error
   * is transient and the blob starts again from a fresh read of its source.
   */
  private async uploadChunked(desc: Descriptor, content: Readable, what: string): Promise<void> {
    let location = await this.startUpload(what);
    const verified = verifyingStream(desc, what);
    pipeline(content, verified, () => {});
    let offset = 0;
    // Iterating the verifier: a digest or size mismatch throws here, before the commit.
    for await (const chunk of chunksOf(verified, this.client.chunkSize)) {
      location = await this.sendChunk(location, chunk, offset, what);
      offset += chunk.length;
    }
    const url = new URL(location);
    url.searchParams.set('digest', desc.digest);
    const res = await this.call(url.toString(), { method: 'PUT', access: 'push', headers: { 'content-length': '0' } });
    await this.expectCommitted(res, what);
  }

  private async sendChunk(location: URL, chunk: Buffer, offset: number, what: string): Promise<URL> {
    const transport = this.client.transport;
    let sent = 0;
    for (let attempt = 1; ; attempt++) {
      const body = chunk.subarray(sent);
      const first = offset + sent;
      let failure: unknown;
      try {
        const res = await this.call(location.toString(), {
          method: 'PATCH',
          access: 'push',
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${first}-${offset + chunk.length - 1}`, 'content-length': String(body.length) },
          body,
          // The registry may have taken part of it: ask, rather than send the same bytes twice.
          replayable: false,
        });
        if (res.statusCode === 202) {
          await res.body.dump();
          const next = header(res, 'location');
          if (!next) throw new RegistryError(`${what}: registry accepted a chunk without a Location`, res.statusCode);
          return new URL(next, location);
        }
        failure = errorForResponse(`${what} (upload chunk at byte ${first})`, res.statusCode, await res.body.text().catch(() => ''), 'write');
      } catch (err) {
        failure = err;
      }
      if (attempt >= transport.attempts || !isTransientError(failure)) throw failure;
      const status = await this.uploadStatus(location, offset);
      if (!status || status.received < offset || status.received > offset + chunk.length) {
        throw new ConnectionError(`${what}: upload session lost after a failed chunk at byte ${first} (${(failure as Error).message})`, { cause: failure });
      }
      transport.log(`${what}: chunk at byte ${first} failed (${(failure as Error).message}); registry has ${status.received} bytes, resuming there`);
      sent = status.received - offset;
      location = status.location;
      if (sent === chunk.length) return location;
    }
  }

  /** How many bytes an upload session holds (`Range: 0-N`), or undefined when the session is gone. */
  private async uploadStatus(location: URL, offset: number): Promise<{ received: number; location: URL } | undefined> {
    let res: Response;
    try {
      res = await this.call(location.toString(), { method: 'GET', access: 'push' });
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

  private async cancelUpload(res: Response): Promise<void> {
    const location = header(res, 'location');
    if (!location) return;
    try {
      const url = new URL(location, await this.client.transport.origin(this.registry));
      const del = await this.call(url.toString(), { method: 'DELETE', access: 'push' });
      await del.body.dump();
    } catch {
      // An abandoned upload is the registry's to collect; nothing of ours is left half-written.
    }
  }

  private getManifest(reference: string, what: string): Promise<{ bytes: Uint8Array; mediaType: string; digestHeader: string | undefined }> {
    return this.rereading(what, () => this.getManifestOnce(reference, what));
  }

  private async getManifestOnce(reference: string, what: string): Promise<{ bytes: Uint8Array; mediaType: string; digestHeader: string | undefined }> {
    const res = await this.call(`/manifests/${reference}`, { method: 'GET', access: 'pull', headers: { accept: MANIFEST_ACCEPT } });
    if (res.statusCode !== 200) await this.fail(res, what);
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

  /** Send an API request with the authorization it needs, answering one 401 challenge. */
  private async call(pathOrUrl: string, opts: CallOptions): Promise<Response> {
    const transport = this.client.transport;
    const origin = await transport.origin(this.registry);
    const absolute = /^https?:\/\//.test(pathOrUrl);
    const url = absolute ? pathOrUrl : `${origin}${opts.absolutePath ? pathOrUrl : `/v2/${this.name}${pathOrUrl}`}`;
    // An upload Location elsewhere gets no credentials, and never a downgrade to plain HTTP.
    const target = new URL(url);
    if (absolute && origin.startsWith('https:') && target.protocol !== 'https:') {
      throw new RegistryError(`${this.location}: registry sent a plain-HTTP location (${target.origin}) for an HTTPS registry; refused`, 0);
    }
    const ours = target.origin === origin;
    const scopes = opts.scopes ?? (this.name ? [`repository:${this.name}:${ACTIONS[opts.access]}`, ...(opts.alsoPull ?? []).map((n) => `repository:${n}:pull`)] : []);
    const sent = ours ? await this.client.auth.authorization(this.registry, scopes) : undefined;
    const send = (authorization: string | undefined): Promise<Response> =>
      transport.send(url, { ...opts, headers: { ...opts.headers, ...(authorization ? { authorization } : {}) } });
    const res = await send(sent);
    const replayable = !(opts.body && !(opts.body instanceof Uint8Array));
    if (res.statusCode !== 401 || !replayable || !ours) return res;
    const next = await this.client.auth.challenged(this.registry, header(res, 'www-authenticate'), scopes, sent);
    if (!next) return res;
    await res.body.dump();
    const retried = await send(next);
    // Refused again with what the registry just asked for: say so, do not ask again.
    if (retried.statusCode !== 401) return retried;
    await retried.body.dump();
    throw await this.client.auth.refused(this.registry, header(retried, 'www-authenticate'), scopes);
  }

  private async fail(res: Response, what: string, action: 'read' | 'write' | 'delete' = 'read'): Promise<never> {
    const text = res.statusCode === 404 || res.statusCode >= 400 ? await res.body.text().catch(() => '') : '';
    throw errorForResponse(what, res.statusCode, text, action);
  }

  private describe(reference: string): string {
    return isDigest(reference) ? `${this.location}@${reference}` : `${this.location}:${reference}`;
  }
}

/** The actions a token must grant, per kind of request (distribution asks `delete` for DELETE). */
const ACTIONS: Record<Access, string> = { pull: 'pull', push: 'pull,push', delete: 'delete' };

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function pageSize(value: number | undefined): number {
  const n = value ?? DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`page size must be a positive integer, not ${value}`);
  return n;
}

/**
 * The next page named by a `Link` header (`<url>; rel="next"`, RFC 8288), resolved against the
 * page it came with: distribution sends an absolute path (`</v2/acme/app/tags/list?last=x&n=2>`),
 * others a full URL. A link to another origin is refused: the credentials are for this one.
 */
export function nextPage(link: string | string[] | undefined, page: URL, what: string): URL | undefined {
  const value = Array.isArray(link) ? link.join(', ') : link;
  if (!value) return undefined;
  for (const m of value.matchAll(/<([^>]*)>([^<]*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(m[2]!);
    if (!(rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/).includes('next')) continue;
    let next: URL;
    try {
      next = new URL(m[1]!, page);
    } catch {
      throw new RegistryError(`${what}: the registry sent a next-page link that is not a URL (${JSON.stringify(m[1])})`, 0);
    }
    if (next.origin !== page.origin) throw new RegistryError(`${what}: the registry sent a next-page link to another origin (${next.origin}); refused`, 0);
    return next;
  }
  return undefined;
}

/** A registry without a catalog, or without one for these credentials: one error, whatever the status. */
function catalogUnavailable(registry: string, what: string, err: NotFoundError | AuthError): RegistryError {
  const status = err instanceof AuthError ? err.status : 404;
  const reason = [`${what}: `, `${registry}: `].reduce((m, p) => (m.startsWith(p) ? m.slice(p.length) : m), err.message);
  const message = `${registry}: the registry does not offer the catalog API${status === 404 ? '' : ' to these credentials'} (GET /v2/_catalog: HTTP ${status}, ${reason})`;
  const codes = err instanceof AuthError ? err.codes : [];
  return status === 404 ? new RegistryError(message, status, codes, { cause: err }) : new AuthError(message, status, codes, { cause: err });
}

/** The registry forgot the upload session (after a half-received request, or a commit it already did). */
function isUploadGone(err: unknown): boolean {
  if (!(err instanceof RegistryError)) return false;
  return err.status === 404 || err.status === 416 || err.codes.includes('BLOB_UPLOAD_UNKNOWN') || err.codes.includes('BLOB_UPLOAD_INVALID');
}

function contentType(res: Response): string | undefined {
  return header(res, 'content-type')?.split(';')[0]?.trim();
}

/** Regroup a stream into buffers of `size` bytes (the last may be shorter). */
async function* chunksOf(stream: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const data of stream) {
    parts.push(data);
    held += data.length;
    while (held >= size) {
      const all = Buffer.concat(parts, held);
      yield all.subarray(0, size);
      parts = [all.subarray(size)];
      held -= size;
    }
  }
  if (held > 0) yield Buffer.concat(parts, held);
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
