import { fetchBytes, readAll } from '../../content/read.js';
import type { Descriptor } from '../../oci/schemas.js';
import { InvalidContentError } from '../../oci/errors.js';
import { channelTag, parseTag, releaseTag } from '../model/names.js';
import { sortDescending } from '../model/releases.js';
import type { ChannelRecord, ReleaseRecord } from '../model/views.js';
import { LruCache } from './cache.js';
import { parseChannelManifest, parseReleaseIndex, parseReleaseManifest, type ParsedIndex, type ReleaseEntry } from './oci-mapping.js';
import type { PackageRepository } from './repositories.js';

/** A release as stored: its index and one record per media type, in push order. */
export interface StoredRelease {
  release: string;
  index: Descriptor;
  packageCreatedAt: string;
  entries: ReleaseEntry[];
  records: ReleaseRecord[];
}

export interface StoredChannel {
  desc: Descriptor;
  channel: ChannelRecord;
}

/** What the tags of a package repository say: its releases and channels by name, and how to look one up. */
export interface TagMap {
  releases: string[];
  channels: string[];
  probe(tag: string): Promise<Descriptor | undefined>;
  /**
   * Answers computed from these tags alone (with content, which never changes): the same for as
   * long as this TagMap is handed out, which a layout does while its index.json is unchanged.
   */
  derived: Map<string, unknown>;
}

/** Blobs up to this size are kept in memory once read (packages are small; layers of images are not here). */
const MAX_CACHED_BLOB = 1024 * 1024;

/**
 * Reads a package's OCI content back into CNR records. Tags are read fresh every time; what they
 * point at is addressed by digest, never changes, and is cached (parsed) in one byte-bounded LRU.
 */
export class PackageReader {
  private readonly cache: LruCache<unknown>;
  private readonly tagMaps = new WeakMap<readonly string[], TagMap>();

  constructor(cacheBytes: number) {
    this.cache = new LruCache(cacheBytes);
  }

  async tagMap(repo: PackageRepository, hints?: readonly string[]): Promise<TagMap> {
    const view = await repo.tagView(hints);
    // A layout hands out the same view while index.json is unchanged: its parse is kept with it.
    const known = this.tagMaps.get(view.tags);
    if (known) return known;
    const releases: string[] = [];
    const channels: string[] = [];
    for (const tag of view.tags) {
      const parsed = parseTag(tag);
      if (parsed?.kind === 'release') releases.push(parsed.release);
      else if (parsed?.kind === 'channel') channels.push(parsed.channel);
    }
    const map = { releases: sortDescending(releases), channels: channels.sort(), probe: (tag: string) => view.probe(tag), derived: new Map<string, unknown>() };
    this.tagMaps.set(view.tags, map);
    return map;
  }

  /** A release by its exact name; undefined when it has no tag (any more). */
  async release(repo: PackageRepository, tags: TagMap, release: string): Promise<StoredRelease | undefined> {
    const index = await tags.probe(releaseTag(release));
    if (!index) return undefined;
    const parsed = await this.cached(repo, index, 'index', parseReleaseIndex);
    const records = await Promise.all(parsed.entries.map((e) => this.cached(repo, e.manifest, 'manifest', parseReleaseManifest)));
    return { release: parsed.release, index, packageCreatedAt: parsed.packageCreatedAt, entries: parsed.entries, records };
  }

  /**
   * A channel as the API shows it: members that are no longer releases are dropped (the
   * reference keeps them), `current` moves to the highest remaining member, and a channel with
   * none left is absent.
   */
  async channel(repo: PackageRepository, tags: TagMap, name: string, releases: readonly string[] = tags.releases): Promise<StoredChannel | undefined> {
    const desc = await tags.probe(channelTag(name));
    if (!desc) return undefined;
    const stored = await this.cached(repo, desc, 'channel', parseChannelManifest);
    const members = stored.releases.filter((r) => releases.includes(r));
    const current = members.includes(stored.current) ? stored.current : sortDescending(members)[0];
    if (current === undefined) return undefined;
    return { desc, channel: { name: stored.name, current, releases: members } };
  }

  /** A small blob from memory when it was read before; else its bytes, or a verified stream for a large one. */
  async blob(repo: PackageRepository, desc: Descriptor): Promise<Uint8Array | NodeJS.ReadableStream> {
    const key = `blob:${desc.digest}`;
    const hit = this.cache.get(key);
    if (hit instanceof Uint8Array) return hit;
    const stream = await repo.fetch(desc);
    if (desc.size > MAX_CACHED_BLOB) return stream;
    const bytes = await readAll(stream, desc.size);
    this.cache.set(key, bytes, bytes.length);
    return bytes;
  }

  /** Remember content this process just wrote, so reading it back costs nothing. */
  remember(desc: Descriptor, kind: 'index' | 'manifest' | 'channel', value: ParsedIndex | ReleaseRecord | ChannelRecord): void {
    this.cache.set(`${kind}:${desc.digest}`, value, desc.size * 2 + 256);
  }

  private async cached<T>(repo: PackageRepository, desc: Descriptor, kind: 'index' | 'manifest' | 'channel', parse: (bytes: Uint8Array, what: string) => T): Promise<T> {
    const key = `${kind}:${desc.digest}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit as T;
    const what = `${repo.location}@${desc.digest}`;
    const bytes = await fetchBytes(repo, desc);
    let value: T;
    try {
      value = parse(bytes, what);
    } catch (err) {
      throw new InvalidContentError(`${what}: not the ${kind} this store writes (${(err as Error).message.split('\n')[0]})`);
    }
    // Parsed objects take about twice their JSON in memory.
    this.cache.set(key, value, bytes.length * 2 + 256);
    return value;
  }
}
