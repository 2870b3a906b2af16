import { z } from 'zod';
import { digestOf } from '../oci/digest.js';
import { goJsonString, goStringMap, goStringSlice, marshalPlatform } from '../oci/gojson.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Descriptor, Manifest } from '../oci/schemas.js';

/**
 * go-containerregistry (ggcr), the library cosign writes through: its pkg/v1 structs as Go's
 * encoding/json writes them, and `mutate.Append`. ggcr's field order is not image-spec's
 * (a descriptor is mediaType, size, digest, …), so src/oci/gojson.ts's marshalers do not fit.
 */

/** ggcr `v1.Descriptor`: mediaType, size, digest, data, urls, annotations, platform, artifactType. */
function ggcrDescriptor(d: Descriptor): string {
  const f = [`"mediaType":${goJsonString(d.mediaType)}`, `"size":${d.size}`, `"digest":${goJsonString(d.digest)}`];
  if (d.data) f.push(`"data":${goJsonString(d.data)}`);
  if (d.urls?.length) f.push(`"urls":${goStringSlice(d.urls)}`);
  if (d.annotations && Object.keys(d.annotations).length) f.push(`"annotations":${goStringMap(d.annotations)}`);
  if (d.platform) f.push(`"platform":${marshalPlatform(d.platform)}`);
  if (d.artifactType) f.push(`"artifactType":${goJsonString(d.artifactType)}`);
  return `{${f.join(',')}}`;
}

/**
 * ggcr `v1.Manifest`: schemaVersion, mediaType, config, layers, annotations, subject. It has no
 * artifactType; cosign 3 wraps it (`referrerManifest`) to append one, which lands last.
 */
export function ggcrManifest(m: Manifest): string {
  const f = [`"schemaVersion":${m.schemaVersion}`];
  if (m.mediaType) f.push(`"mediaType":${goJsonString(m.mediaType)}`);
  f.push(`"config":${ggcrDescriptor(m.config)}`);
  f.push(`"layers":${m.layers ? `[${m.layers.map(ggcrDescriptor).join(',')}]` : 'null'}`);
  if (m.annotations && Object.keys(m.annotations).length) f.push(`"annotations":${goStringMap(m.annotations)}`);
  if (m.subject) f.push(`"subject":${ggcrDescriptor(m.subject)}`);
  if (m.artifactType) f.push(`"artifactType":${goJsonString(m.artifactType)}`);
  return `{${f.join(',')}}`;
}

/** Go's zero time.Time as encoding/json writes it; ggcr's `created` is a struct, so never omitted. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

const HistorySchema = z.object({
  author: z.string().optional(),
  created: z.string().optional(),
  created_by: z.string().optional(),
  comment: z.string().optional(),
  empty_layer: z.boolean().optional(),
});
type History = z.infer<typeof HistorySchema>;

/** The ggcr `ConfigFile` fields; unknown ones are dropped, as ggcr's decoder drops them. */
export const ConfigFileSchema = z.object({
  architecture: z.string().default(''),
  author: z.string().optional(),
  container: z.string().optional(),
  created: z.string().optional(),
  docker_version: z.string().optional(),
  history: z.array(HistorySchema).nullable().optional(),
  os: z.string().default(''),
  rootfs: z.object({ type: z.string(), diff_ids: z.array(z.string()).nullable() }),
  // ggcr's Config struct has ~25 fields in its own order; a signature image never sets one,
  // so rather than re-serialize one wrongly, a non-empty one is refused.
  config: z.record(z.string(), z.unknown()).refine((c) => Object.keys(c).length === 0, 'config.config is not empty'),
  'os.version': z.string().optional(),
  variant: z.string().optional(),
  'os.features': z.array(z.string()).nullable().optional(),
});
type ConfigFile = z.infer<typeof ConfigFileSchema>;

function ggcrHistory(h: History): string {
  const f: string[] = [];
  if (h.author) f.push(`"author":${goJsonString(h.author)}`);
  f.push(`"created":${goJsonString(h.created ?? ZERO_TIME)}`);
  if (h.created_by) f.push(`"created_by":${goJsonString(h.created_by)}`);
  if (h.comment) f.push(`"comment":${goJsonString(h.comment)}`);
  if (h.empty_layer) f.push('"empty_layer":true');
  return `{${f.join(',')}}`;
}

/** ggcr `v1.ConfigFile` in struct order (the `config` member is always `{}`, see the schema). */
function ggcrConfig(c: ConfigFile): string {
  const f = [`"architecture":${goJsonString(c.architecture)}`];
  const str = (k: string, v: string | undefined): void => {
    if (v) f.push(`${goJsonString(k)}:${goJsonString(v)}`);
  };
  str('author', c.author);
  str('container', c.container);
  f.push(`"created":${goJsonString(c.created ?? ZERO_TIME)}`);
  str('docker_version', c.docker_version);
  if (c.history?.length) f.push(`"history":[${c.history.map(ggcrHistory).join(',')}]`);
  f.push(`"os":${goJsonString(c.os)}`);
  f.push(`"rootfs":{"type":${goJsonString(c.rootfs.type)},"diff_ids":${goStringSlice(c.rootfs.diff_ids)}}`);
  f.push('"config":{}');
  str('os.version', c['os.version']);
  str('variant', c.variant);
  if (c['os.features']?.length) f.push(`"os.features":${goStringSlice(c['os.features'])}`);
  return `{${f.join(',')}}`;
}

interface GgcrImage {
  manifest: Manifest;
  config: ConfigFile;
}

/**
 * cosign's `empty.Signatures()`: ggcr's `empty.Image` with OCI manifest and config media types.
 * Its manifest is a placeholder; only what `mutateAppend` keeps of it matters.
 */
export const EMPTY_SIGNATURES: GgcrImage = {
  manifest: {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, size: 0, digest: digestOf('') },
    layers: [],
  },
  config: { architecture: '', created: ZERO_TIME, os: '', rootfs: { type: 'layers', diff_ids: null }, config: {} },
};

/**
 * ggcr `mutate.Append(base, Addendum{Layer: static layer, Annotations})`, which is what cosign's
 * `AppendSignatures` does: one empty history entry and one diff_id (a static layer is not
 * compressed, so its diff_id is its digest) per layer; the base's layers, media types and
 * annotations kept; its subject not (mutate's image has its own, unset), nor an artifactType
 * (ggcr's v1.Manifest has no such field).
 */
export function mutateAppend(base: GgcrImage, layer: Descriptor): { manifest: Manifest; config: Uint8Array } {
  const cfg: ConfigFile = {
    ...base.config,
    history: [...(base.config.history ?? []), {}],
    rootfs: { ...base.config.rootfs, diff_ids: [...(base.config.rootfs.diff_ids ?? []), layer.digest] },
  };
  const config = Buffer.from(ggcrConfig(cfg), 'utf8');
  const { subject: _subject, artifactType: _artifactType, ...rest } = base.manifest;
  const manifest: Manifest = {
    ...rest,
    config: { ...base.manifest.config, size: config.length, digest: digestOf(config) },
    layers: [...(base.manifest.layers ?? []), layer],
  };
  return { manifest, config };
}
