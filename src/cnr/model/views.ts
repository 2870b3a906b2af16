import { z } from 'zod';
import type { Descriptor } from '../../oci/schemas.js';
import { contentMediaType, manifestMediaType } from './names.js';
import { sortDescending } from './releases.js';

/** One (release, media type) of a package, as the store knows it. */
export interface ReleaseRecord {
  /** `namespace/name` */
  package: string;
  release: string;
  /** Short media type: `helm`, `kpm`, ... */
  mediaType: string;
  /** As the reference writes it (Python's isoformat of UTC, no zone), kept verbatim. */
  createdAt: string;
  metadata: Record<string, unknown> | null;
  /** CNR digest: bare hex SHA-256 of the gunzipped tar. */
  digest: string;
  /** Length of the gzip bytes. */
  size: number;
  /** Stored as a Helm OCI chart (`helm pull oci://...` works on it). */
  helmChart: boolean;
  /** The OCI layer holding the gzip bytes, unchanged. */
  blob: Descriptor;
}

export interface ChannelRecord {
  name: string;
  current: string;
  releases: string[];
}

export interface PackageRecord {
  package: string;
  /** When the package got its first release. */
  createdAt: string;
  releases: ReleaseRecord[];
  channels: ChannelRecord[];
}

/**
 * A manifest view as it crosses a boundary (a server's answer, a store the reference wrote),
 * validated; what the model reads of it, everything else ignored. `metadata` may be absent: read
 * as null, as the API shows it.
 */
export const ManifestViewSchema = z.object({
  package: z.string(),
  release: z.string(),
  created_at: z.string(),
  metadata: z.record(z.string(), z.unknown()).nullable().optional(),
  mediaType: z.string(),
  content: z.object({
    digest: z.string().regex(/^[a-f0-9]{64}$/, 'expected a CNR digest: 64 lowercase hex digits'),
    size: z.number().int().nonnegative(),
    mediaType: z.string(),
    urls: z.array(z.string()).optional(),
  }),
});

export interface ManifestView {
  content: { digest: string; mediaType: string; size: number; urls: string[] };
  created_at: string;
  mediaType: string;
  metadata: Record<string, unknown> | null;
  package: string;
  release: string;
}

export interface ListEntry {
  created_at: string;
  default: string;
  manifests: string[];
  name: string;
  releases: string[];
  visibility: 'public';
}

export interface ChannelView {
  current: string;
  name: string;
  releases: string[];
}

// Keys in alphabetical order, as the reference (Flask's jsonify) sends them.
export function manifestView(r: ReleaseRecord): ManifestView {
  return {
    content: { digest: r.digest, mediaType: contentMediaType(r.mediaType), size: r.size, urls: [] },
    created_at: r.createdAt,
    mediaType: manifestMediaType(r.mediaType),
    metadata: r.metadata,
    package: r.package,
    release: r.release,
  };
}

/** The one-release view: the manifest view plus the channels whose `current` is this release. */
export function releaseView(r: ReleaseRecord, channels: readonly ChannelRecord[]): ManifestView & { channels: string[] } {
  return { ...manifestView(r), channels: channels.filter((c) => c.current === r.release).map((c) => c.name).sort() };
}

export function channelView(c: ChannelRecord): ChannelView {
  return { current: c.current, name: c.name, releases: sortDescending(c.releases) };
}

/**
 * Records in the order the reference lists them: by release, releases in the order they first
 * appeared, and within a release by media type in the order they were pushed.
 */
export function pushOrder(records: readonly ReleaseRecord[]): ReleaseRecord[] {
  const firstSeen = new Map<string, string>();
  for (const r of records) {
    const seen = firstSeen.get(r.release);
    if (seen === undefined || r.createdAt < seen) firstSeen.set(r.release, r.createdAt);
  }
  return [...records].sort((a, b) =>
    compareText(firstSeen.get(a.release)!, firstSeen.get(b.release)!) || compareText(a.release, b.release) || compareText(a.createdAt, b.createdAt) || compareText(a.mediaType, b.mediaType));
}

export function releasesOf(records: readonly ReleaseRecord[]): string[] {
  return sortDescending(new Set(records.map((r) => r.release)));
}

/**
 * The list entry of a package from its releases (highest first) and the records of its default
 * (highest) release; undefined for a package without releases (the reference omits it).
 */
export function listEntry(pkg: string, createdAt: string, releases: readonly string[], defaultRecords: readonly ReleaseRecord[]): ListEntry | undefined {
  const latest = releases[0];
  if (latest === undefined) return undefined;
  const manifests = pushOrder(defaultRecords).map((r) => r.mediaType);
  return { created_at: createdAt, default: latest, manifests, name: pkg, releases: [...releases], visibility: 'public' };
}

/** A timestamp as the reference writes `created_at`: UTC, microseconds, no zone (`2026-12-01T19:02:25.981527`). */
export function formatTimestamp(epochMicros: number): string {
  const millis = Math.floor(epochMicros / 1000);
  const iso = new Date(millis).toISOString(); // 2026-12-01T19:02:25.981Z
  const micros = String(Math.floor(epochMicros) % 1_000_000).padStart(6, '0');
  return `${iso.slice(0, 19)}.${micros}`;
}

/** `created_at` as an RFC 3339 time (for `org.opencontainers.image.created`); the text as is when it does not parse. */
export function toRfc3339(createdAt: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?$/.exec(createdAt);
  return m ? `${m[1]}${m[2] ?? ''}Z` : createdAt;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
