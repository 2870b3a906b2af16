import { fetchBytes } from '../../content/read.js';
import type { Descriptor } from '../../oci/schemas.js';
import { channelTag, plainTag, releaseTag, type PackageName } from '../model/names.js';
import type { ChannelRecord } from '../model/views.js';
import { channelManifest, EMPTY, HelmMediaType, parseReleaseManifest, releaseIndex, type ReleaseEntry } from './oci-mapping.js';
import type { PackageReader } from './reader.js';
import type { PackageRepository } from './repositories.js';

/**
 * How a release and a channel are written as tags: content first, the tag last. `release-X` is
 * the truth; Helm's tag `X` is derived from it and written after it.
 */

/**
 * The release's index, then its tags: `release-X` first (the truth), Helm's `X` after it (on a
 * layout both land in one rewrite of index.json).
 */
export async function writeRelease(repo: PackageRepository, reader: PackageReader, pkg: PackageName, release: string, packageCreatedAt: string, entries: ReleaseEntry[]): Promise<void> {
  const index = releaseIndex(pkg.full, release, packageCreatedAt, entries);
  await repo.push(index.desc, index.bytes);
  reader.remember(index.desc, 'index', { release, packageCreatedAt, entries });
  await repo.tagAll([
    { desc: index.desc, reference: releaseTag(release) },
    { desc: plainTarget(index.desc, entries), reference: plainTag(release) },
  ]);
}

/** What Helm's tag of a release names: its Helm chart when it has one, else its index. */
function plainTarget(index: Descriptor, entries: readonly ReleaseEntry[]): Descriptor {
  return entries.find((e) => e.manifest.artifactType === HelmMediaType.config)?.manifest ?? index;
}

/**
 * Helm's tag `X` for release X: the release's Helm chart when it has one, else its index; no
 * tag when the release is gone. Written after the release's own tag (the truth), and checked
 * again on every write of the release, so an interrupted write is mended by the next one.
 */
export async function reconcilePlainTag(repo: PackageRepository, reader: PackageReader, pkg: PackageName, release: string, stored: { index: Descriptor; entries: ReleaseEntry[] } | undefined): Promise<void> {
  const tag = plainTag(release);
  const desired = stored ? plainTarget(stored.index, stored.entries) : undefined;
  const current = await repo.probe(tag);
  if (desired && current?.digest === desired.digest) return;
  if (desired) return repo.tag(desired, tag);
  // Only a tag this store wrote for this release is removed; anything else there is someone else's.
  if (current && (await isOurs(repo, reader, current, pkg, release))) await repo.untag(tag, current);
}

async function isOurs(repo: PackageRepository, reader: PackageReader, desc: Descriptor, pkg: PackageName, release: string): Promise<boolean> {
  const stored = await reader.tagMap(repo).then((tags) => reader.release(repo, tags, release)).catch(() => undefined);
  if (stored?.index.digest === desc.digest || stored?.entries.some((e) => e.manifest.digest === desc.digest)) return true;
  try {
    const record = parseReleaseManifest(await fetchBytes(repo, desc), desc.digest);
    return record.package === pkg.full && record.release === release;
  } catch {
    return false;
  }
}

export async function writeChannel(repo: PackageRepository, pkg: PackageName, channel: ChannelRecord): Promise<void> {
  const manifest = channelManifest(pkg.full, channel);
  await pushMissing(repo, EMPTY.desc, EMPTY.bytes);
  await repo.push(manifest.desc, manifest.bytes);
  await repo.tag(manifest.desc, channelTag(channel.name));
}

export async function pushMissing(repo: PackageRepository, desc: Descriptor, bytes: Uint8Array): Promise<void> {
  if (!(await repo.exists(desc))) await repo.push(desc, bytes);
}
