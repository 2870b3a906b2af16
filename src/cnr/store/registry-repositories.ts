import type { Readable } from 'node:stream';
import { NotFoundError } from '../../oci/errors.js';
import { parseReference } from '../../oci/reference.js';
import type { Descriptor } from '../../oci/schemas.js';
import type { RegistryClient } from '../../registry/client.js';
import { RegistryError } from '../../registry/errors.js';
import type { Repository } from '../../registry/repository.js';
import type { PackageName } from '../model/names.js';
import { FreshReads } from './fresh.js';
import type { PackageRepository, RepositorySet, TagView } from './repositories.js';

/**
 * Packages in an OCI registry under a prefix: package `ns/name` is repository `PREFIX/ns/name`.
 * The registry holds everything; this process holds no state, so any number of servers can
 * share one registry. Packages are found with the catalog API (`/v2/_catalog`).
 */
export class RegistryRepositories implements RepositorySet {
  readonly location: string;
  // Shared per (package, tag): concurrent requests revalidate a tag once per round trip.
  private readonly tagLists = new FreshReads<string[]>((repo) => listTags(this.repository(repo)));
  private readonly probes = new FreshReads<Descriptor | undefined>((key) => {
    const [repo, tag] = key.split('\n') as [string, string];
    return this.repository(repo).probe(tag);
  });

  /** The channel tags each package had when last listed (guesses for the next read; never answers). */
  private readonly lastChannels = new Map<string, string[]>();

  constructor(
    private readonly client: RegistryClient,
    readonly registry: string,
    /** Repository path prefix without slashes at either end; '' for the registry's root. */
    readonly prefix: string,
  ) {
    this.location = prefix ? `${registry}/${prefix}` : registry;
  }

  ociRepository(pkg: PackageName): string {
    return `${this.location}/${pkg.full}`;
  }

  async packages(): Promise<string[]> {
    const all = await this.client.catalog(this.registry, this.prefix ? { prefix: this.prefix } : {});
    const start = this.prefix ? this.prefix.length + 1 : 0;
    return all.map((name) => name.slice(start)).filter((name) => name.split('/').length === 2);
  }

  async open(pkg: PackageName): Promise<PackageRepository> {
    // Registries create repositories on the first push; one that does not exist has no tags.
    return new RegistryPackage(this, this.prefix ? `${this.prefix}/${pkg.full}` : pkg.full);
  }

  /**
   * A Repository object for one operation: it remembers the manifests it handled (so a tag
   * does not download what was just pushed), which must not grow for the server's lifetime.
   */
  repository(path: string): Repository {
    return this.client.repository(parseReference(`${this.registry}/${path}`));
  }

  /**
   * The tag list, and the tags the caller will ask about read at the same time rather than after
   * it: the channels the previous list of this package had, and `hints`. Each of these reads
   * starts after the call, so all of them are fresh; one round trip instead of two.
   */
  async tagView(path: string, hints: readonly string[]): Promise<TagView> {
    const ahead = new Map<string, Promise<Descriptor | undefined>>();
    for (const tag of [...(this.lastChannels.get(path) ?? []), ...hints]) {
      const read = this.probe(path, tag);
      read.catch(() => undefined); // awaited below only when asked for
      ahead.set(tag, read);
    }
    const tags = await this.tagLists.read(path);
    const channels = tags.filter((t) => t.startsWith('channel-'));
    if (channels.length > 0) this.lastChannels.set(path, channels);
    else this.lastChannels.delete(path);
    // A list of its own per call: the tag list read is shared by concurrent callers, but each one's
    // lookups (`ahead`) started after its own arrival, and what is derived from them is its own.
    return { tags: [...tags], probe: (tag) => ahead.get(tag) ?? this.probe(path, tag) };
  }

  probe(path: string, tag: string): Promise<Descriptor | undefined> {
    return this.probes.read(`${path}\n${tag}`);
  }
}

async function listTags(repo: Repository): Promise<string[]> {
  try {
    return await repo.tags();
  } catch (err) {
    // No repository yet (NAME_UNKNOWN): a package without releases.
    if (err instanceof NotFoundError || (err instanceof RegistryError && err.status === 404)) return [];
    throw err;
  }
}

class RegistryPackage implements PackageRepository {
  readonly location: string;
  private writer: Repository | undefined;

  constructor(private readonly set: RegistryRepositories, private readonly path: string) {
    this.location = `${set.registry}/${path}`;
  }

  tagView(hints: readonly string[] = []): Promise<TagView> {
    return this.set.tagView(this.path, hints);
  }

  probe(tag: string): Promise<Descriptor | undefined> {
    return this.set.probe(this.path, tag);
  }

  resolve(reference: string): Promise<Descriptor> {
    return this.set.repository(this.path).resolve(reference);
  }

  fetch(desc: Descriptor): Promise<Readable> {
    return this.set.repository(this.path).fetch(desc);
  }

  exists(desc: Descriptor): Promise<boolean> {
    return this.set.repository(this.path).exists(desc);
  }

  // Writes of one operation share a Repository, so tagging reuses the manifest just pushed.
  push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    return this.write().push(desc, content);
  }

  tag(desc: Descriptor, reference: string): Promise<void> {
    return this.write().tag(desc, reference);
  }

  async tagAll(tags: ReadonlyArray<{ desc: Descriptor; reference: string }>): Promise<void> {
    for (const { desc, reference } of tags) await this.write().tag(desc, reference);
  }

  async untag(_tag: string, desc: Descriptor): Promise<void> {
    await this.write().deleteManifest(desc.digest);
  }

  private write(): Repository {
    this.writer ??= this.set.repository(this.path);
    return this.writer;
  }
}
