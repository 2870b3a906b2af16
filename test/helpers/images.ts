import { randomBytes } from 'node:crypto';
import type { Target } from '../../src/content/target.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import type { Descriptor, Platform } from '../../src/oci/schemas.js';

export interface ImageSpec {
  /** Sizes of random layers, in bytes. */
  layers?: number[];
  format?: 'oci' | 'docker';
  platform?: Platform;
}

export function blob(data: Uint8Array, mediaType: string): { desc: Descriptor; data: Uint8Array } {
  return { desc: { mediaType, digest: digestOf(data), size: data.length }, data };
}

/** Push a small image with random layers to a target; returns the manifest descriptor. */
export async function pushImage(target: Target, spec: ImageSpec = {}): Promise<Descriptor> {
  const docker = spec.format === 'docker';
  const layers = (spec.layers ?? [1024]).map((size) => blob(randomBytes(size), docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip));
  const platform = spec.platform ?? { architecture: 'amd64', os: 'linux' };
  const config = blob(
    Buffer.from(JSON.stringify({ architecture: platform.architecture, os: platform.os, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.desc.digest) }, config: {} })),
    docker ? MediaType.DockerConfig : MediaType.OciConfig,
  );
  for (const b of [config, ...layers]) await target.push(b.desc, b.data);
  const manifest = blob(
    Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
      config: config.desc,
      layers: layers.map((l) => l.desc),
    })),
    docker ? MediaType.DockerManifest : MediaType.OciManifest,
  );
  await target.push(manifest.desc, manifest.data);
  return { ...manifest.desc, platform };
}

/** Push an index over manifests already in the target. */
export async function pushIndex(target: Target, manifests: Descriptor[], format: 'oci' | 'docker' = 'oci'): Promise<Descriptor> {
  const mediaType = format === 'docker' ? MediaType.DockerManifestList : MediaType.OciIndex;
  const index = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests })), mediaType);
  await target.push(index.desc, index.data);
  return index.desc;
}

/** A multi-arch image: one manifest per platform under an index. */
export async function pushMultiArch(target: Target, platforms: Platform[] = [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }]): Promise<Descriptor> {
  const manifests: Descriptor[] = [];
  for (const platform of platforms) manifests.push(await pushImage(target, { platform }));
  return pushIndex(target, manifests);
}
