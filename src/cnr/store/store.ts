import { digestOf } from '../../oci/digest.js';
import { channelNotFound, invalidUsage, packageExists, packageNotFound, releaseNotFound } from '../model/errors.js';
import { blobFilename, channelTag, manifestMediaType, releaseTag, type PackageName } from '../model/names.js';
import { inspectPackage, DEFAULT_MAX_UNPACKED } from '../model/package.js';
import { isRelease, parseRelease, selectRelease, sortDescending } from '../model/releases.js';
import { formatTimestamp, pushOrder, type ChannelRecord, type PackageRecord, type ReleaseRecord } from '../model/views.js';
import { PackageList } from './list.js';
import { HelmMediaType, releaseManifest, type ReleaseEntry } from './oci-mapping.js';
import { PackageReader, type StoredRelease, type TagMap } from './reader.js';
import { pushMissing, reconcilePlainTag, writeChannel, writeRelease } from './tag-writes.js';
import type { PackageRepository, RepositorySet } from './repositories.js';
import { KeyedQueue } from '../../util/keyed-queue.js';

export interface CnrStoreOptions {
  /** Bytes of parsed manifests and small blobs kept in memory (default 64 MiB). */
  cacheBytes?: number;
  /** How long a package list may be served before it is rebuilt, in ms (default 5000). */
  listTtlMs?: number;
  /** Largest unpacked size of a pushed package (default 512 MiB). */
  maxUnpackedSize?: number;
  /** Clock, in microseconds since the epoch (tests). */
  now?: () => number;
}

export interface PushRequest {
  release: string;
  /** Short media type. */
  mediaType: string;
  blob: Uint8Array;
  metadata: Record<string, unknown> | null;
  force: boolean;
  /** Keep these instead of the clock's (migrations). */
  createdAt?: string;
  packageCreatedAt?: string;
}

export interface BlobContent {
  record: ReleaseRecord;
  filename: string;
  body: Uint8Array | NodeJS.ReadableStream;
}

const now = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

/**
 * The CNR registry over OCI repositories: the API's operations, with CNR's rules (409 on an
 * existing release, release queries, channels) and the OCI mapping of oci-mapping.ts. Writes
 * follow the bridge's order (blobs, manifests, index, tag last), so an interrupted push leaves
 * no release behind; writes to one package are serialised within this process.
 */
export class CnrStore {
  readonly reader: PackageReader;
  private readonly list: PackageList;
  private readonly locks = new KeyedQueue();
  private readonly maxUnpacked: number;
  private readonly clock: () => number;

  constructor(readonly repositories: RepositorySet, options: CnrStoreOptions = {}) {
    this.reader = new PackageReader(options.cacheBytes ?? 64 * 1024 * 1024);
    this.list = new PackageList(repositories, this.reader, options.listTtlMs ?? 5000);
    this.maxUnpacked = options.maxUnpackedSize ?? DEFAULT_MAX_UNPACKED;
    this.clock = options.now ?? now;
  }

  listPackages(): ReturnType<PackageList['entries']> {
    return this.list.entries();
  }

  /** Every release and media type of a package, and its channels. 404 when it has no release. */
  async package(pkg: PackageName): Promise<PackageRecord> {
    const { repo, tags } = await this.withReleases(pkg);
    // Blob GETs ask for it on every request: answered once per state of the tags (TagMap.derived).
    const known = tags.derived.get('package') as PackageRecord | undefined;
    if (known) return known;
    const releases = (await Promise.all(tags.releases.map((r) => this.reader.release(repo, tags, r)))).filter((r): r is StoredRelease => r !== undefined);
    if (releases.length === 0) throw packageNotFound(pkg.full);
    const channels = await this.channelsOf(repo, tags);
    const records = pushOrder(releases.flatMap((r) => r.records));
    const record = { package: pkg.full, createdAt: oldest(releases), releases: records, channels };
    tags.derived.set('package', record);
    return record;
  }

  /** The release a query (`default`, `1.2.3`, `>=1.0,<2.0`) selects, with the package's channels. */
  async release(pkg: PackageName, query: string): Promise<{ release: StoredRelease; channels: ChannelRecord[] }> {
    const { repo, tags } = await this.withReleases(pkg, isRelease(query) ? [releaseTag(query)] : []);
    // The most asked question, answered once per state of the tags (see TagMap.derived).
    const key = `release\n${query}`;
    const known = tags.derived.get(key) as { release: StoredRelease; channels: ChannelRecord[] } | undefined;
    if (known) return known;
    const chosen = selectRelease(tags.releases, query);
    const [release, channels] = await Promise.all([
      chosen === undefined ? undefined : this.reader.release(repo, tags, chosen),
      this.channelsOf(repo, tags),
    ]);
    if (!release) throw releaseNotFound(pkg.full, query);
    const answer = { release, channels };
    if (tags.derived.size < 64) tags.derived.set(key, answer);
    return answer;
  }

  /** One (release, media type); `-` is the release's only media type. */
  async record(pkg: PackageName, query: string, mediaType: string): Promise<{ record: ReleaseRecord; channels: ChannelRecord[] }> {
    const { release, channels } = await this.release(pkg, query);
    return { record: pick(pkg, release, mediaType), channels };
  }

  async channels(pkg: PackageName): Promise<ChannelRecord[]> {
    const { repo, tags } = await this.withReleases(pkg);
    return this.channelsOf(repo, tags);
  }

  async channel(pkg: PackageName, name: string): Promise<ChannelRecord> {
    const found = (await this.channels(pkg)).find((c) => c.name === name);
    if (!found) throw channelNotFound(pkg.full, name);
    return found;
  }

  async blob(pkg: PackageName, record: ReleaseRecord): Promise<BlobContent> {
    const repo = await this.existing(pkg);
    return { record, filename: blobFilename(pkg, record.digest), body: await this.reader.blob(repo, record.blob) };
  }

  /** The blob of a package whose CNR digest is `hex`. */
  async blobByDigest(pkg: PackageName, hex: string): Promise<BlobContent> {
    const found = (await this.package(pkg)).releases.find((r) => r.digest === hex);
    if (!found) throw releaseNotFound(pkg.full, `blob sha256:${hex}`);
    return this.blob(pkg, found);
  }

  async push(pkg: PackageName, req: PushRequest): Promise<ReleaseRecord> {
    const release = parseRelease(req.release);
    const content = await inspectPackage(req.blob, { maxUnpackedSize: this.maxUnpacked });
    return this.locked(pkg, async () => {
      const repo = (await this.repositories.open(pkg, true))!;
      const tags = await this.reader.tagMap(repo);
      const existing = tags.releases.includes(release) ? await this.reader.release(repo, tags, release) : undefined;
      if (existing?.entries.some((e) => e.mediaType === req.mediaType) && !req.force) {
        // A push retried after a crash between the release's tag and Helm's mends the latter.
        await reconcilePlainTag(repo, this.reader, pkg, release, { index: existing.index, entries: existing.entries });
        throw packageExists(pkg.full, release, req.mediaType);
      }
      // Every release carries the package's creation time; any one of them tells it.
      const other = existing ?? (tags.releases[0] === undefined ? undefined : await this.reader.release(repo, tags, tags.releases[0]));
      const createdAt = req.createdAt ?? formatTimestamp(this.clock());
      const packageCreatedAt = req.packageCreatedAt ?? other?.packageCreatedAt ?? createdAt;
      const blobDigest = digestOf(req.blob);
      const built = releaseManifest(
        { package: pkg.full, release, mediaType: req.mediaType, createdAt, metadata: req.metadata, packageCreatedAt, digest: content.digest, size: content.size, blobDigest, ...(content.chart ? { chart: content.chart } : {}) },
        blobFilename(pkg, content.digest),
      );
      // Blobs before the manifest that names them (a registry checks), the index after, tags last.
      await Promise.all([pushMissing(repo, built.layer, req.blob), pushMissing(repo, built.config.desc, built.config.bytes)]);
      await repo.push(built.manifest.desc, built.manifest.bytes);
      const record: ReleaseRecord = { package: pkg.full, release, mediaType: req.mediaType, createdAt, metadata: req.metadata, digest: content.digest, size: content.size, helmChart: built.helmChart, blob: built.layer };
      // The next push of this package reads this release back (the package's creation time): from memory.
      this.reader.remember(built.manifest.desc, 'manifest', record);
      const entry: ReleaseEntry = {
        mediaType: req.mediaType,
        manifest: { ...built.manifest.desc, artifactType: built.helmChart ? HelmMediaType.config : manifestMediaType(req.mediaType) },
      };
      const before = existing?.entries ?? [];
      const at = before.findIndex((e) => e.mediaType === req.mediaType);
      const entries = at < 0 ? [...before, entry] : before.map((e, i) => (i === at ? entry : e));
      await writeRelease(repo, this.reader, pkg, release, packageCreatedAt, entries);
      this.list.changed(pkg);
      return record;
    });
  }

  async deleteRelease(pkg: PackageName, query: string, mediaType: string): Promise<ReleaseRecord> {
    return this.locked(pkg, async () => {
      const { repo, tags } = await this.withReleases(pkg);
      const release = selectRelease(tags.releases, query);
      const stored = release === undefined ? undefined : await this.reader.release(repo, tags, release);
      if (!stored) throw releaseNotFound(pkg.full, query);
      const record = pick(pkg, stored, mediaType);
      const entries = stored.entries.filter((e) => e.mediaType !== record.mediaType);
      if (entries.length > 0) {
        await writeRelease(repo, this.reader, pkg, stored.release, stored.packageCreatedAt, entries);
      } else {
        await repo.untag(releaseTag(stored.release), stored.index);
        await reconcilePlainTag(repo, this.reader, pkg, stored.release, undefined);
        await this.dropFromChannels(repo, pkg, stored.release);
      }
      this.list.changed(pkg);
      return record;
    });
  }

  /** Add a release to a channel (created when missing) and make it the channel's current. */
  async addToChannel(pkg: PackageName, name: string, release: string): Promise<ChannelRecord> {
    return this.locked(pkg, async () => {
      const { repo, tags } = await this.withReleases(pkg);
      if (!tags.releases.includes(release)) throw releaseNotFound(pkg.full, release);
      const stored = await this.reader.channel(repo, tags, name, tags.releases);
      const members = stored ? stored.channel.releases.filter((r) => r !== release) : [];
      const channel = { name, current: release, releases: [...members, release] };
      await writeChannel(repo, pkg, channel);
      return channel;
    });
  }

  /** Remove a release from a channel: `current` moves to the highest remaining; the channel goes with its last release. */
  async removeFromChannel(pkg: PackageName, name: string, release: string): Promise<void> {
    await this.locked(pkg, async () => {
      const { repo, tags } = await this.withReleases(pkg);
      const stored = await this.reader.channel(repo, tags, name, tags.releases);
      if (!stored) throw channelNotFound(pkg.full, name);
      if (!stored.channel.releases.includes(release)) throw releaseNotFound(pkg.full, `${release} in channel ${name}`);
      const members = stored.channel.releases.filter((r) => r !== release);
      if (members.length === 0) return repo.untag(channelTag(name), stored.desc);
      const current = stored.channel.current === release ? sortDescending(members)[0]! : stored.channel.current;
      await writeChannel(repo, pkg, { name, current, releases: members });
    });
  }

  async deleteChannel(pkg: PackageName, name: string): Promise<void> {
    await this.locked(pkg, async () => {
      const { repo, tags } = await this.withReleases(pkg);
      const stored = await this.reader.channel(repo, tags, name, tags.releases);
      if (!stored) throw channelNotFound(pkg.full, name);
      await repo.untag(channelTag(name), stored.desc);
    });
  }

  /**
   * Make a channel exactly `channel` (a migration copying one): members that are not releases
   * here are left out. Returns what was written, or undefined when the channel already was so
   * (or has no member here).
   */
  async setChannel(pkg: PackageName, channel: ChannelRecord): Promise<ChannelRecord | undefined> {
    return this.locked(pkg, async () => {
      const repo = await this.existing(pkg);
      const tags = await this.reader.tagMap(repo);
      const members = channel.releases.filter((r) => tags.releases.includes(r));
      const current = members.includes(channel.current) ? channel.current : sortDescending(members)[0];
      if (current === undefined) return undefined;
      const wanted = { name: channel.name, current, releases: members };
      const stored = await this.reader.channel(repo, tags, channel.name, tags.releases);
      const same = stored && stored.channel.current === current && [...stored.channel.releases].sort().join() === [...members].sort().join();
      if (same) return undefined;
      await writeChannel(repo, pkg, wanted);
      return wanted;
    });
  }

  private async dropFromChannels(repo: PackageRepository, pkg: PackageName, release: string): Promise<void> {
    const tags = await this.reader.tagMap(repo);
    for (const name of tags.channels) {
      // Read with the deleted release still counted a member, to see whether the channel held it.
      const stored = await this.reader.channel(repo, tags, name, [...tags.releases, release]);
      if (!stored?.channel.releases.includes(release)) continue;
      const members = stored.channel.releases.filter((r) => r !== release);
      if (members.length === 0) await repo.untag(channelTag(name), stored.desc);
      else await writeChannel(repo, pkg, { name, current: members.includes(stored.channel.current) ? stored.channel.current : sortDescending(members)[0]!, releases: members });
    }
  }

  private async channelsOf(repo: PackageRepository, tags: TagMap): Promise<ChannelRecord[]> {
    const found = await Promise.all(tags.channels.map((n) => this.reader.channel(repo, tags, n)));
    return found.flatMap((c) => (c ? [c.channel] : []));
  }

  /** A package's repository and tags; 404 package-not-found when it has no release. */
  private async withReleases(pkg: PackageName, hints: readonly string[] = []): Promise<{ repo: PackageRepository; tags: TagMap }> {
    const repo = await this.existing(pkg);
    const tags = await this.reader.tagMap(repo, hints);
    if (tags.releases.length === 0) throw packageNotFound(pkg.full);
    return { repo, tags };
  }

  private async existing(pkg: PackageName): Promise<PackageRepository> {
    const repo = await this.repositories.open(pkg, false);
    if (!repo) throw packageNotFound(pkg.full);
    return repo;
  }

  /** Run `work` after every earlier write to the same package has finished. */
  private locked<T>(pkg: PackageName, work: () => Promise<T>): Promise<T> {
    return this.locks.run(pkg.full, work);
  }
}

function pick(pkg: PackageName, release: StoredRelease, mediaType: string): ReleaseRecord {
  if (mediaType === '-') {
    if (release.records.length !== 1) {
      throw invalidUsage(`release ${release.release} of ${pkg.full} has ${release.records.length} media types (${release.records.map((r) => r.mediaType).join(', ')}); name one instead of -`);
    }
    return release.records[0]!;
  }
  const record = release.records.find((r) => r.mediaType === mediaType);
  if (!record) throw releaseNotFound(pkg.full, release.release, mediaType);
  return record;
}

function oldest(releases: readonly StoredRelease[]): string {
  return releases.map((r) => r.packageCreatedAt).filter(Boolean).sort()[0] ?? '';
}
