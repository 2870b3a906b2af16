import { RegistryError } from './errors.js';

/**
 * Where a registry may send us, in one place. Credentials are for the registry's own origin:
 * they go with a request to it and to nothing else (redirects to storage, upload locations
 * elsewhere); an HTTPS registry may not move a request to plain HTTP; page links stay on the
 * registry. The transport (redirects), the authorized call (upload locations) and the listing
 * (next-page links) all ask here.
 */

/** Whether a request to `target` may carry the registry's credentials. */
export function carriesCredentials(target: URL, origin: string): boolean {
  return target.origin === origin;
}

/**
 * The headers to send on to a redirect's target: the same ones, without Authorization when it
 * leaves the origin of the request redirected (storage back-ends get presigned URLs).
 */
export function redirectHeaders(headers: Record<string, string>, from: URL, to: URL): Record<string, string> {
  if (to.origin === from.origin) return headers;
  const { authorization: _dropped, ...rest } = headers;
  return rest;
}

/** An absolute location a registry sent (an upload's Location): never a downgrade to plain HTTP. */
export function checkLocation(target: URL, origin: string, where: string): void {
  if (origin.startsWith('https:') && target.protocol !== 'https:') {
    throw new RegistryError(`${where}: registry sent a plain-HTTP location (${target.origin}) for an HTTPS registry; refused`, 0);
  }
}

/** A next-page link must stay on the page's origin: the credentials are for that one. */
export function checkPageLink(next: URL, page: URL, what: string): void {
  if (next.origin !== page.origin) throw new RegistryError(`${what}: the registry sent a next-page link to another origin (${next.origin}); refused`, 0);
}
