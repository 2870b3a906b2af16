import { firstLine, isTransientError } from '../../oci/errors.js';
import { Limiter } from '../../transfer/limiter.js';
import { verifyPackage } from '../client/unpack.js';
import { CnrError } from '../model/errors.js';
import { parseFullName, type PackageName } from '../model/names.js';
import type { CnrStore } from '../store/store.js';
import type { ReleaseSource } from './appr-store.js';
import type { CnrSource } from './sources.js';

export interface MigrateOptions {
  /** Only this namespace. */
  namespace?: string;
  /** Say what would move; write nothing. */
  dryRun?: boolean;
  /** Packages migrated at once (default 4). */
  concurrency?: number;
  onEvent?: (event: MigrateEvent) => void;
}

export type MigrateEvent =
  | { type: 'release'; package: string; release: string; mediaType: string; action: 'copied' | 'present' | 'would-copy'; bytes: number }
  | { type: 'channel'; package: string; channel: string; action: 'set' | 'present' | 'would-set' }
  | { type: 'skipped'; package: string; release: string; mediaType: string; reason: string }
  | { type: 'failed'; package: string; release?: string; mediaType?: string; reason: string };

export interface MigrateSummary {
  packages: number;
  /** (release, media type) pairs copied now (or that would be, with dryRun). */
  releases: number;
  /** Already at the destination with the same digest: not copied again. */
  present: number;
  bytes: number;
  channels: number;
  /** Blobs that did not verify against their CNR digest (reported, not copied). */
  skipped: number;
  /** Anything else that could not be copied (a conflict, a source error). */
  failed: number;
}

/**
 * Copy every package, release, media type, metadata, created_at and channel of a CNR source
 * into a store, in the store's OCI mapping, so `cnr serve` over the destination answers as the
 * source did. Every blob is verified against its CNR digest and size before anything is
 * written; one that does not verify is reported and skipped, the rest goes on. What the
 * destination already has (same release, media type and digest) is not copied again, so a
 * migration that was interrupted is finished by running it again.
 */
export async function migrateCnr(source: CnrSource, destination: CnrStore, options: MigrateOptions = {}): Promise<MigrateSummary> {
  const summary: MigrateSummary = { packages: 0, releases: 0, present: 0, bytes: 0, channels: 0, skipped: 0, failed: 0 };
  const emit = (event: MigrateEvent) => {
    if (event.type === 'skipped') summary.skipped++;
    if (event.type === 'failed') summary.failed++;
    options.onEvent?.(event);
  };
  const packages = await source.packages(options.namespace ? { namespace: options.namespace } : {});
  const limiter = new Limiter(options.concurrency ?? 4);
  await Promise.all(packages.map((p) => limiter.run(async () => {
    try {
      await migratePackage(source, destination, p, options, summary, emit);
      summary.packages++;
    } catch (err) {
      emit({ type: 'failed', package: p.package, reason: firstLine(err) });
    }
  })));
  return summary;
}

async function migratePackage(
  source: CnrSource,
  destination: CnrStore,
  entry: { package: string; createdAt: string },
  options: MigrateOptions,
  summary: MigrateSummary,
  emit: (e: MigrateEvent) => void,
): Promise<void> {
  const pkg = parseFullName(entry.package);
  const present = await existing(destination, pkg);
  for (const release of await source.releases(entry.package)) {
    const key = `${release.release}\n${release.mediaType}`;
    const have = present.get(key);
    const base = { package: entry.package, release: release.release, mediaType: release.mediaType };
    if (have === release.digest) {
      summary.present++;
      emit({ type: 'release', ...base, action: 'present', bytes: release.size });
      continue;
    }
    if (have !== undefined) {
      emit({ type: 'failed', ...base, reason: `the destination holds other content for it (digest ${have.slice(0, 12)}, the source's is ${release.digest.slice(0, 12)}); not overwritten` });
      continue;
    }
    const blob = await verified(source, release).catch((err: unknown) => {
      if (isTransientError(err) && !(err instanceof Error && err.name === 'PackageMismatchError')) throw err;
      emit({ type: 'skipped', ...base, reason: firstLine(err) });
      return undefined;
    });
    if (!blob) continue;
    if (!options.dryRun) {
      await destination.push(pkg, { release: release.release, mediaType: release.mediaType, blob, metadata: release.metadata, force: false, createdAt: release.createdAt, packageCreatedAt: entry.createdAt });
    }
    summary.releases++;
    summary.bytes += blob.length;
    emit({ type: 'release', ...base, action: options.dryRun ? 'would-copy' : 'copied', bytes: blob.length });
  }
  for (const channel of await source.channels(entry.package)) {
    if (options.dryRun) {
      emit({ type: 'channel', package: entry.package, channel: channel.name, action: 'would-set' });
      continue;
    }
    const written = await destination.setChannel(pkg, channel).catch((err: unknown) => {
      if (err instanceof CnrError && err.status === 404) return undefined; // no release of it arrived
      throw err;
    });
    if (written) summary.channels++;
    emit({ type: 'channel', package: entry.package, channel: channel.name, action: written ? 'set' : 'present' });
  }
}

/** The source's bytes, checked against the size and CNR digest it claims for them. */
async function verified(source: CnrSource, release: ReleaseSource): Promise<Buffer> {
  const blob = await source.blob(release);
  await verifyPackage(blob, { digest: release.digest, size: release.size }, { label: `${release.package} ${release.release} (${release.mediaType})` });
  return blob;
}

/** (release, media type) -> CNR digest of what the destination has. */
async function existing(destination: CnrStore, pkg: PackageName): Promise<Map<string, string>> {
  try {
    const record = await destination.package(pkg);
    return new Map(record.releases.map((r) => [`${r.release}\n${r.mediaType}`, r.digest]));
  } catch (err) {
    if (err instanceof CnrError && err.status === 404) return new Map();
    throw err;
  }
}
