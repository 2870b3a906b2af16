import { InputError } from './errors.js';
import type { Platform } from './schemas.js';

/**
 * Platforms as given to --platform: parsed, printed, matched. Light on purpose: the CLI checks the
 * option with it while commander reads it, before any command code is loaded.
 */

/** `os/arch[/variant]`, as given to --platform. */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export function parsePlatform(value: string): PlatformSpec {
  const parts = value.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-zA-Z0-9._-]+$/.test(p))) {
    throw new InputError(`--platform ${JSON.stringify(value)}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform | PlatformSpec): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** A platform given without a variant matches every variant of that os/arch. */
export function platformMatches(p: Platform | undefined, specs: PlatformSpec[]): boolean {
  if (!p) return false;
  return specs.some((s) => s.os === p.os && s.architecture === p.architecture && (s.variant === undefined || s.variant === p.variant));
}
