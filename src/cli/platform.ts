import { InputError } from '../oci/errors.js';
import type { PlatformSpec } from '../ops/copy.js';

/**
 * `--platform os/arch[/variant]`, checked as commander reads the option (a bad one is reported
 * before anything else). The same rule and message as the library's `parsePlatform`
 * (src/ops/copy.ts): a copy, so that registering `copy` does not load the copy code. Change both
 * together.
 */
export function parsePlatformOption(value: string): PlatformSpec {
  const parts = value.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-zA-Z0-9._-]+$/.test(p))) {
    throw new InputError(`--platform ${JSON.stringify(value)}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}
