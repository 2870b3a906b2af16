import { Readable } from 'node:stream';
import type { Budgeted, Mountable, ReadOnlyTarget, Target } from '../content/target.js';
import { MAX_MANIFEST_SIZE, readAll } from '../content/read.js';
import { isManifestLike } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/schemas.js';
import { BlobReads } from './blob-reads.js';
import { BlobUploads } from './blob-uploads.js';
import { Endpoint, ping } from './http.js';
import { catalog, listTags, type CatalogOptions, type ListOptions } from './listing.js';
import { ManifestStore } from './manifests.js';
import type { RetryBudget } from './retry.js';
import type { RegistrySession } from './session.js';

export { nextPage, type CatalogOptions, type ListOptions } from './listing.js';

interface RepositoryParts {
  http: Endpoint;
  reads: BlobReads;
  uploads: BlobUploads;
  manifests: ManifestStore;
  budget: RetryBudget;
}

/**
 * One repository of a registry, speaking the OCI distribution API. A `Target`: resolve, fetch
 * (verified against the descriptor), exists, push (streamed blobs, verified manifests), tag;
 * and `Mountable`: blobs of another repository of the same registry move without their bytes.
 *
 * The facade over the blob and manifest stores (blob-reads, blob-uploads, manifests, listing),
 * which all speak through one Endpoint (http): the session's transport with authorization.
 * Each call of a method here is one operation, with one retry budget (`--retries N`) for all
 * the requests it sends, however they fail: see retry.ts.
 */
export class Repository implements Target, Mountable, Budgeted<Repository> {
  readonly location: string;
  private readonly http: Endpoint;
  private readonly reads: BlobReads;
  private readonly uploads: BlobUploads;
  /** Manifests this process pushed or read here, so tagging does not download them again. */
  private readonly manifests: ManifestStore;

  /** Set on a view made by withRetryBudget: every call spends it instead of a fresh one. */
  private readonly held: RetryBudget | undefined;

  constructor(private readonly session: RegistrySession, readonly registry: string, readonly name: string, shared?: RepositoryParts) {
    this.http = shared?.http ?? new Endpoint(session, registry, name);
    this.location = this.http.location;
    this.reads = shared?.reads ?? new BlobReads(this.http);
    this.uploads = shared?.uploads ?? new BlobUploads(this.http, this.reads);
    this.manifests = shared?.manifests ?? new ManifestStore(this.http);
    this.held = shared?.budget;
  }

  /** The same repository (same caches), whose calls all spend `budget`: several calls, one operation. */
  withRetryBudget(budget: RetryBudget): Repository {
    return new Repository(this.session, this.registry, this.name, { http: this.http, reads: this.reads, uploads: this.uploads, manifests: this.manifests, budget });
  }

  resolve(reference: string): Promise<Descriptor> {
    return this.manifests.resolve(reference, this.budget());
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    const cached = this.manifests.cached(desc.digest);
    if (cached) return Readable.from([cached]);
    return this.reads.fetch(desc, this.budget());
  }

  exists(desc: Descriptor): Promise<boolean> {
    return this.reads.exists(desc, this.budget());
  }

  async push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    if (isManifestLike(desc.mediaType)) return this.manifests.put(desc, content, desc.digest, this.budget());
    return this.uploads.upload(desc, content, this.budget());
  }

  /** Two operations when the manifest's bytes are not held here: its fetch, then the PUT under `reference`. */
  async tag(desc: Descriptor, reference: string): Promise<void> {
    const bytes = this.manifests.cached(desc.digest) ?? (await readAll(await this.fetch(desc), MAX_MANIFEST_SIZE));
    await this.manifests.put(desc, bytes, reference, this.budget());
  }

  async mountFrom(desc: Descriptor, source: ReadOnlyTarget): Promise<boolean> {
    if (!(source instanceof Repository) || source.registry !== this.registry || source.name === this.name) return false;
    if (isManifestLike(desc.mediaType)) return false;
    return this.uploads.mount(desc, source.name, this.budget());
  }

  /**
   * A tag's (or digest's) descriptor from one HEAD, or undefined when it does not exist: the
   * cheap way to tell whether a tag moved. No bytes come back to hash, so the digest is the
   * registry's Docker-Content-Digest (fetch still verifies content against it). Without a
   * usable header or manifest type, one GET (resolve) tells instead.
   */
  probe(reference: string): Promise<Descriptor | undefined> {
    return this.manifests.probe(reference, this.budget());
  }

  /**
   * The OCI 1.1 Referrers API: the manifests whose `subject` is `digest`, or undefined when the
   * registry does not answer the API (404; distribution 2.8), in which case the referrers tag
   * schema applies. The verdict is kept: one probe per repository.
   */
  referrers(digest: string): Promise<Descriptor[] | undefined> {
    return this.manifests.referrers(digest, this.budget());
  }

  /**
   * Delete a manifest by digest: true when deleted, false when it was not there (or a retry
   * found it gone after a first try whose answer was lost). Registries untag what pointed at
   * it (distribution removes every tag of that digest); blobs stay until garbage collection.
   */
  deleteManifest(digest: string): Promise<boolean> {
    return this.manifests.delete(digest, this.budget());
  }

  /**
   * List every tag, following the `Link` header's pages (`pageSize` tags a page; distribution
   * 2.8 ignores it and sends one page, distribution 3 and most others page). Each page is one
   * operation with a retry budget of its own.
   */
  tags(options: ListOptions = {}): Promise<string[]> {
    return listTags(this.http, options);
  }

  /** A fresh retry budget of this client's policy (`--retries`). */
  retryBudget(): RetryBudget {
    return this.http.transport.budget();
  }

  /** The budget of one call: the view's, or a fresh one (one per operation). */
  private budget(): RetryBudget {
    return this.held ?? this.retryBudget();
  }

  /** GET /v2/ with credentials: proves the registry answers and accepts them. */
  static ping(session: RegistrySession, registry: string): Promise<void> {
    return ping(session, registry);
  }

  /**
   * The repositories of a registry (GET /v2/_catalog, every page), or those under `prefix`.
   * Filtered here: the API has no prefix query, and not every registry sorts its answer.
   */
  static catalog(session: RegistrySession, registry: string, options: CatalogOptions = {}): Promise<string[]> {
    return catalog(session, registry, options);
  }
}
