import { isTransientError } from '../../oci/errors.js';
import { Limiter } from '../../transfer/limiter.js';
import { parseFullName, type PackageName } from '../model/names.js';
import { listEntry, type ListEntry } from '../model/views.js';
import type { PackageReader, TagMap } from './reader.js';
import type { RepositorySet } from './repositories.js';

export interface PackageListing {
  /** Sorted as the reference lists: by creation, oldest first. */
  entries: ListEntry[];
  /** Changes whenever `entries` does: a key for answers built from it. */
  version: number;
}

const CONCURRENCY = 16;

/**
 * The list of packages, the one read that cannot be fresh on every request (it touches every
 * package). It is rebuilt when older than the TTL, in the background while the previous one is
 * served, so a change made through another server shows within TTL + one rebuild; a change made
 * through this one shows at once (the package is read again before the next answer).
 */
export class PackageList {
  private listing: (PackageListing & { at: number; byName: Map<string, ListEntry> }) | undefined;
  private rebuilding: Promise<void> | undefined;
  private readonly dirty = new Set<string>();
  private readonly summaries = new WeakMap<TagMap, ListEntry>();
  private version = 0;

  constructor(private readonly repositories: RepositorySet, private readonly reader: PackageReader, private readonly ttlMs: number) {}

  async entries(): Promise<PackageListing> {
    if (!this.listing) await this.rebuild();
    else if (Date.now() - this.listing.at > this.ttlMs) void this.rebuild().catch(() => undefined);
    if (this.dirty.size > 0) await this.refreshDirty();
    return this.listing!;
  }

  changed(pkg: PackageName): void {
    this.dirty.add(pkg.full);
  }

  private rebuild(): Promise<void> {
    this.rebuilding ??= (async () => {
      try {
        const names = await this.repositories.packages();
        const byName = new Map<string, ListEntry>();
        const limiter = new Limiter(CONCURRENCY);
        await Promise.all(names.map((name) => limiter.run(async () => {
          const entry = await this.summary(name);
          if (entry) byName.set(name, entry);
        })));
        this.publish(byName);
      } finally {
        this.rebuilding = undefined;
      }
    })();
    return this.rebuilding;
  }

  private async refreshDirty(): Promise<void> {
    const names = [...this.dirty];
    this.dirty.clear();
    const byName = new Map(this.listing!.byName);
    for (const name of names) {
      const entry = await this.summary(name);
      if (entry) byName.set(name, entry);
      else byName.delete(name);
    }
    this.publish(byName);
  }

  private publish(byName: Map<string, ListEntry>): void {
    const entries = [...byName.values()].sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.name < b.name ? -1 : 1));
    // A rebuild that found nothing new keeps the version, so answers built from it stay cached.
    const previous = this.listing?.entries;
    const same = previous !== undefined && previous.length === entries.length && entries.every((e, i) => e === previous[i] || JSON.stringify(e) === JSON.stringify(previous[i]));
    this.listing = { entries, byName, at: Date.now(), version: same ? this.version : ++this.version };
  }

  /** A package's entry; undefined when it has no release, or holds content this store cannot read (it is not listed). */
  private async summary(name: string): Promise<ListEntry | undefined> {
    try {
      return await this.read(name);
    } catch (err) {
      if (isTransientError(err)) throw err;
      return undefined;
    }
  }

  private async read(name: string): Promise<ListEntry | undefined> {
    let pkg: PackageName;
    try {
      pkg = parseFullName(name);
    } catch {
      return undefined; // a repository under the prefix that is not a package name
    }
    const repo = await this.repositories.open(pkg, false);
    if (!repo) return undefined;
    const tags = await this.reader.tagMap(repo);
    // Unchanged tags (a layout hands out the same TagMap while index.json is unchanged): the same entry.
    const known = this.summaries.get(tags);
    if (known) return known;
    const latest = tags.releases[0];
    if (latest === undefined) return undefined;
    const stored = await this.reader.release(repo, tags, latest);
    if (!stored) return undefined;
    const entry = listEntry(pkg.full, stored.packageCreatedAt, tags.releases, stored.records);
    if (entry) this.summaries.set(tags, entry);
    return entry;
  }
}
