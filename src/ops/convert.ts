import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { convertBundle, type Bundle, type ConvertedBundle } from '../cnab/index.js';
import type { Reference } from '../oci/reference.js';
import { imageSlots } from '../cnab/images.js';
import { writeFilesAtomic } from '../util/files.js';

/**
 * The offline dry run of push: the exact config blob, config manifest and index that push would
 * send for this bundle and relocation map. An image with no relocation entry is taken to be in
 * the target repository at its contentDigest.
 */
export function convertOffline(bundle: Bundle, target: Reference, relocationMap: Record<string, string> = {}): ConvertedBundle {
  const map = { ...relocationMap };
  for (const { image } of imageSlots(bundle)) {
    if (!map[image.image] && image.contentDigest) map[image.image] = `${target.name}@${image.contentDigest}`;
  }
  return convertBundle(bundle, target, map);
}

export const CONVERT_FILES = { config: 'bundle.json', configManifest: 'config-manifest.json', index: 'index.json' } as const;

export async function writeConverted(converted: ConvertedBundle, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFilesAtomic([
    { path: join(dir, CONVERT_FILES.config), data: converted.config.bytes },
    { path: join(dir, CONVERT_FILES.configManifest), data: converted.configManifest.bytes },
    { path: join(dir, CONVERT_FILES.index), data: converted.index.bytes },
  ]);
}
