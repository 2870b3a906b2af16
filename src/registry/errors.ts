import { z } from 'zod';
import { CnabOciError, NotFoundError } from '../oci/errors.js';

/** The error body of the distribution spec: `{"errors":[{"code":"...","message":"..."}]}`. */
const ErrorBody = z.object({
  errors: z.array(z.object({ code: z.string().optional(), message: z.string().optional(), detail: z.unknown().optional() })),
});

export interface RegistryErrorDetail {
  code?: string;
  message?: string;
}

/** A registry answered with a status we cannot go on from. `status` is the HTTP status. */
export class RegistryError extends CnabOciError {
  constructor(message: string, readonly status: number, readonly codes: string[] = [], options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** 401 after authenticating, or 403: the credentials are missing, wrong, or lack the right. */
export class AuthError extends RegistryError {}

/** The registry refused a manifest it could not store (often: a media type it does not support). */
export class ManifestRejectedError extends RegistryError {}

/** The registry could not be reached at all (DNS, refused connection, TLS failure, timeout). */
export class ConnectionError extends CnabOciError {}

/** Parse a distribution error body; `undefined` when it is not one. Never throws. */
export function parseErrorBody(text: string): RegistryErrorDetail[] | undefined {
  try {
    const parsed = ErrorBody.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.errors.map((e) => ({ code: e.code, message: e.message })) : undefined;
  } catch {
    return undefined;
  }
}

/** Codes under which registries refuse a manifest's content or media type. */
const MANIFEST_REJECTION_CODES = new Set(['MANIFEST_INVALID', 'UNSUPPORTED']);

/**
 * Turn a failed response into a typed, one-line error. `what` names the object and the
 * registry repository (`localhost:5000/acme/app manifest 1.0`). Bodies are cut short: some
 * registries answer with whole HTML pages.
 */
export function errorForResponse(what: string, status: number, bodyText: string, action: 'read' | 'write' | 'manifest-write' | 'delete' = 'read'): CnabOciError {
  const details = parseErrorBody(bodyText) ?? [];
  const codes = details.map((d) => d.code ?? '').filter(Boolean);
  const summary = details.length > 0
    ? details.map((d) => [d.code, d.message].filter(Boolean).join(': ')).join('; ')
    : oneLine(bodyText);
  const suffix = summary ? ` (${summary})` : '';
  if (status === 404 && action === 'read') return new NotFoundError(`${what}: not found${suffix}`);
  if (status === 404 && codes.includes('NAME_UNKNOWN')) {
    return new RegistryError(`${what}: the repository does not exist${suffix}; this registry does not create repositories on push (Amazon ECR does not): create the repository first`, status, codes);
  }
  // Distribution answers 405 UNSUPPORTED unless deletes are switched on; others 405 alone.
  if (action === 'delete' && (status === 405 || codes.includes('UNSUPPORTED'))) {
    return new RegistryError(`${what}: the registry does not allow deleting manifests (HTTP ${status}${summary ? `, ${summary}` : ''}); distribution (registry:2) needs storage.delete.enabled: true (REGISTRY_STORAGE_DELETE_ENABLED=true)`, status, codes);
  }
  if (status === 401) return new AuthError(`${what}: authentication required or failed${suffix}; check your credentials (docker login)`, status, codes);
  if (status === 403) return new AuthError(`${what}: access denied${suffix}`, status, codes);
  if (action === 'manifest-write' && (status === 415 || status === 404 || (status === 400 && (codes.length === 0 || codes.some((c) => MANIFEST_REJECTION_CODES.has(c)))))) {
    return new ManifestRejectedError(`${what}: rejected by the registry with HTTP ${status}${suffix}`, status, codes);
  }
  return new RegistryError(`${what}: HTTP ${status}${suffix}`, status, codes);
}

function oneLine(text: string): string {
  const flat = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}...` : flat;
}
