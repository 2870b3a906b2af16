import { z } from 'zod';
import { digestOf, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/mediatypes.js';
import { DescriptorSchema, type Descriptor } from '../../oci/schemas.js';
import { contentMediaType, manifestMediaType } from '../model/names.js';
import type { ChartMetadata } from '../model/package.js';
import { toRfc3339, type ChannelRecord, type ReleaseRecord } from '../model/views.js';

/**
 * How a CNR package is OCI content (pure: bytes in, bytes out). Per package one repository:
 * - the pushed .tar.gz is one layer blob, unchanged (identical packages share it);
 * - each (release, media type) is an image manifest: a Helm chart (Helm's config and layer
 *   types, so `helm pull oci://` works) when the blob is a chart of that version, otherwise an
 *   OCI artifact (`artifactType` the CNR manifest type, the empty config); the CNR fields
 *   (digest, created_at, metadata) are its annotations;
 * - a release is an index of those manifests, tagged `release-X`;
 * - a channel is a small artifact manifest holding its current release and members, tagged
 *   `channel-NAME`.
 */
export const Annotation = {
  package: 'vnd.cnr.package',
  release: 'vnd.cnr.release',
  mediaType: 'vnd.cnr.media-type',
  digest: 'vnd.cnr.digest',
  createdAt: 'vnd.cnr.created-at',
  metadata: 'vnd.cnr.metadata',
  packageCreatedAt: 'vnd.cnr.package.created-at',
  channel: 'vnd.cnr.channel',
  channelCurrent: 'vnd.cnr.channel.current',
  channelReleases: 'vnd.cnr.channel.releases',
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  created: 'org.opencontainers.image.created',
  description: 'org.opencontainers.image.description',
  url: 'org.opencontainers.image.url',
  source: 'org.opencontainers.image.source',
  authors: 'org.opencontainers.image.authors',
} as const;

export const HelmMediaType = {
  config: 'application/vnd.cncf.helm.config.v1+json',
  chart: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
} as const;

export const CHANNEL_ARTIFACT_TYPE = 'application/vnd.cnr.channel.v1+json';

/** A serialized object and its descriptor. */
export interface Encoded {
  desc: Descriptor;
  bytes: Uint8Array;
}

export function encode(mediaType: string, value: unknown): Encoded {
  const bytes = Buffer.from(JSON.stringify(value));
  return { desc: { mediaType, digest: digestOf(bytes), size: bytes.length }, bytes };
}

/** The OCI empty descriptor's blob, `{}`: the config of artifacts. */
export const EMPTY = encode(MediaType.OciEmpty, {});

export interface ReleaseInput {
  package: string;
  release: string;
  mediaType: string;
  createdAt: string;
  metadata: Record<string, unknown> | null;
  packageCreatedAt: string;
  /** CNR digest and gzip size of the blob. */
  digest: string;
  size: number;
  /** OCI digest of the gzip bytes (the layer). */
  blobDigest: Digest;
  /** Chart.yaml of the blob, when it is a chart. */
  chart?: ChartMetadata;
}

export interface ReleaseManifest {
  manifest: Encoded;
  config: Encoded;
  layer: Descriptor;
  helmChart: boolean;
}

/** The manifest of one (release, media type): a Helm chart when Helm could pull it as this release. */
export function releaseManifest(input: ReleaseInput, filename: string): ReleaseManifest {
  const cnr: Record<string, string> = {
    [Annotation.package]: input.package,
    [Annotation.release]: input.release,
    [Annotation.mediaType]: input.mediaType,
    [Annotation.digest]: input.digest,
    [Annotation.createdAt]: input.createdAt,
    [Annotation.packageCreatedAt]: input.packageCreatedAt,
    ...(input.metadata !== null ? { [Annotation.metadata]: JSON.stringify(input.metadata) } : {}),
  };
  const blobDigest = input.blobDigest;
  // Helm tags a chart by its version: only a chart whose Chart.yaml says this release is one.
  const chart = input.mediaType === 'helm' && input.chart?.version === input.release ? input.chart : undefined;
  if (chart) {
    const config = encode(HelmMediaType.config, chart);
    const layer: Descriptor = { mediaType: HelmMediaType.chart, digest: blobDigest, size: input.size };
    const manifest = encode(MediaType.OciManifest, {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: config.desc,
      layers: [layer],
      annotations: { ...helmAnnotations(chart, input.createdAt), ...cnr },
    });
    return { manifest, config, layer, helmChart: true };
  }
  const layer: Descriptor = { mediaType: contentMediaType(input.mediaType), digest: blobDigest, size: input.size, annotations: { [Annotation.title]: filename } };
  const manifest = encode(MediaType.OciManifest, {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: manifestMediaType(input.mediaType),
    config: EMPTY.desc,
    layers: [layer],
    annotations: { [Annotation.created]: toRfc3339(input.createdAt), ...cnr },
  });
  return { manifest, config: EMPTY, layer, helmChart: false };
}

/** The annotations `helm push` writes, from Chart.yaml. */
function helmAnnotations(chart: ChartMetadata, createdAt: string): Record<string, string> {
  const out: Record<string, string> = {};
  const custom = chart.annotations;
  if (custom && typeof custom === 'object') {
    for (const [k, v] of Object.entries(custom)) if (typeof v === 'string') out[k] = v;
  }
  if (typeof chart.description === 'string') out[Annotation.description] = chart.description;
  out[Annotation.title] = chart.name;
  out[Annotation.version] = chart.version;
  if (typeof chart.home === 'string') out[Annotation.url] = chart.home;
  if (Array.isArray(chart.sources) && typeof chart.sources[0] === 'string') out[Annotation.source] = chart.sources[0];
  if (Array.isArray(chart.maintainers)) {
    const authors = chart.maintainers
      .filter((m): m is { name: string; email?: unknown } => typeof m === 'object' && m !== null && typeof (m as { name?: unknown }).name === 'string')
      .map((m) => (typeof m.email === 'string' ? `${m.name} (${m.email})` : m.name));
    if (authors.length > 0) out[Annotation.authors] = authors.join(', ');
  }
  out[Annotation.created] = toRfc3339(createdAt);
  return out;
}

/** One entry of a release index: a manifest and the short media type it holds. */
export interface ReleaseEntry {
  mediaType: string;
  manifest: Descriptor;
}

export function releaseIndex(pkg: string, release: string, packageCreatedAt: string, entries: readonly ReleaseEntry[]): Encoded {
  return encode(MediaType.OciIndex, {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: entries.map((e) => ({ ...e.manifest, annotations: { [Annotation.mediaType]: e.mediaType } })),
    // The release in the index makes every release's index unique: deleting one by digest
    // (how a registry removes a tag) never takes another release's tag with it.
    annotations: { [Annotation.package]: pkg, [Annotation.release]: release, [Annotation.packageCreatedAt]: packageCreatedAt },
  });
}

export function channelManifest(pkg: string, channel: ChannelRecord): Encoded {
  return encode(MediaType.OciManifest, {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: CHANNEL_ARTIFACT_TYPE,
    config: EMPTY.desc,
    layers: [EMPTY.desc],
    annotations: {
      [Annotation.package]: pkg,
      [Annotation.channel]: channel.name,
      [Annotation.channelCurrent]: channel.current,
      [Annotation.channelReleases]: JSON.stringify(channel.releases),
    },
  });
}

// Reading back. Everything read is validated: the store may hold content other tools wrote.

const Annotations = z.record(z.string(), z.string());

const ReleaseIndexSchema = z.object({
  schemaVersion: z.literal(2),
  manifests: z.array(DescriptorSchema.extend({ annotations: Annotations })),
  annotations: Annotations,
});

const ManifestSchema = z.object({
  schemaVersion: z.literal(2),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  annotations: Annotations,
});

export interface ParsedIndex {
  release: string;
  packageCreatedAt: string;
  entries: ReleaseEntry[];
}

export function parseReleaseIndex(bytes: Uint8Array, what: string): ParsedIndex {
  const index = ReleaseIndexSchema.parse(parseJson(bytes, what));
  const release = index.annotations[Annotation.release];
  if (release === undefined) throw new Error(`${what}: not a CNR release index (no ${Annotation.release} annotation)`);
  const entries: ReleaseEntry[] = [];
  for (const m of index.manifests) {
    const mediaType = m.annotations[Annotation.mediaType];
    if (mediaType === undefined) continue;
    const { annotations: _ignored, ...manifest } = m;
    entries.push({ mediaType, manifest });
  }
  return { release, packageCreatedAt: index.annotations[Annotation.packageCreatedAt] ?? '', entries };
}

export function parseReleaseManifest(bytes: Uint8Array, what: string): ReleaseRecord {
  const m = ManifestSchema.parse(parseJson(bytes, what));
  const a = m.annotations;
  const need = (key: string): string => {
    const value = a[key];
    if (value === undefined) throw new Error(`${what}: not a CNR release manifest (no ${key} annotation)`);
    return value;
  };
  const blob = m.layers[0];
  if (!blob) throw new Error(`${what}: a CNR release manifest has one layer`);
  const metadataText = a[Annotation.metadata];
  const metadata = metadataText === undefined ? null : (parseJson(Buffer.from(metadataText), `${what} metadata`) as Record<string, unknown> | null);
  const { annotations: _ignored, ...layer } = blob;
  return {
    package: need(Annotation.package),
    release: need(Annotation.release),
    mediaType: need(Annotation.mediaType),
    createdAt: need(Annotation.createdAt),
    metadata,
    digest: need(Annotation.digest),
    size: blob.size,
    helmChart: m.config.mediaType === HelmMediaType.config,
    blob: layer,
  };
}

export function parseChannelManifest(bytes: Uint8Array, what: string): ChannelRecord {
  const m = ManifestSchema.parse(parseJson(bytes, what));
  const a = m.annotations;
  const name = a[Annotation.channel];
  const current = a[Annotation.channelCurrent];
  const releases = z.array(z.string()).safeParse(parseJson(Buffer.from(a[Annotation.channelReleases] ?? 'null'), what));
  if (name === undefined || current === undefined || !releases.success) throw new Error(`${what}: not a CNR channel manifest`);
  return { name, current, releases: releases.data };
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new Error(`${what}: invalid JSON (${(err as Error).message})`);
  }
}
