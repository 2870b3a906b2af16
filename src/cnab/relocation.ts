import { z } from 'zod';
import { InputError } from '../oci/errors.js';
import { formatJsonPath, parseJsonText } from './json-text.js';

/**
 * A CNAB relocation map (relocation-mapping.schema.json): original image reference -> the
 * reference it was relocated to, e.g. `cnab/helloworld:0.1.1` -> `localhost:5000/app@sha256:...`.
 */
export type RelocationMap = Record<string, string>;

export const RelocationMapSchema = z.record(z.string(), z.string());

export function parseRelocationMap(input: Uint8Array | string, sourceName: string): RelocationMap {
  const json = parseJsonText(input, sourceName);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InputError(`${sourceName}: expected a JSON object mapping original images to relocated images`);
  }
  for (const [key, value] of Object.entries(json)) {
    if (typeof value !== 'string') {
      throw new InputError(`${sourceName}: ${formatJsonPath([key])}: expected string, got ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}`);
    }
  }
  return RelocationMapSchema.parse(json);
}

/** Pretty JSON (two spaces), keys sorted, trailing newline: stable and diff-friendly. */
export function serializeRelocationMap(map: RelocationMap): string {
  const sorted: RelocationMap = {};
  for (const key of Object.keys(map).sort()) sorted[key] = map[key]!;
  return `${JSON.stringify(sorted, null, 2)}\n`;
}
