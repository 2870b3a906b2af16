import { isDigest } from '../oci/digest.js';
import { InputError, InvalidDigestError } from '../oci/errors.js';
import { parseReference, type Reference } from '../oci/reference.js';

/**
 * Where content lives, as the user wrote it on the command line (the transports skopeo uses):
 * `oci:DIR[:TAG]`, `oci:DIR@sha256:...`, `oci-archive:FILE[:TAG]`, or a registry reference.
 */
export type Location =
  | { kind: 'registry'; reference: Reference }
  | { kind: 'layout'; dir: string; tag?: string }
  | { kind: 'archive'; file: string; tag?: string };

const LAYOUT_PREFIX = 'oci:';
const ARCHIVE_PREFIX = 'oci-archive:';
/** Docker's tag grammar; it cannot contain '/', so `oci:./a:b/c` keeps the whole path. */
const TAG = /^[\w][\w.-]{0,127}$/;

export function parseLocation(input: string): Location {
  if (input.startsWith(LAYOUT_PREFIX)) {
    const { path, tag } = splitPathAndTag(input.slice(LAYOUT_PREFIX.length), input, 'directory');
    return tag === undefined ? { kind: 'layout', dir: path } : { kind: 'layout', dir: path, tag };
  }
  if (input.startsWith(ARCHIVE_PREFIX)) {
    const { path, tag } = splitPathAndTag(input.slice(ARCHIVE_PREFIX.length), input, 'file');
    return tag === undefined ? { kind: 'archive', file: path } : { kind: 'archive', file: path, tag };
  }
  return { kind: 'registry', reference: parseReference(input) };
}

/**
 * `PATH@DIGEST` -> tag = the digest; `PATH:TAG` -> split at the last ':' only when what follows is a
 * valid tag, so paths with colons in them (`oci:/tmp/a:b/c`) stay whole.
 */
function splitPathAndTag(rest: string, input: string, what: string): { path: string; tag?: string } {
  let path = rest;
  let tag: string | undefined;
  const at = rest.lastIndexOf('@');
  const afterAt = at >= 0 ? rest.slice(at + 1) : '';
  if (at >= 0 && /^sha(256|512):/.test(afterAt)) {
    if (!isDigest(afterAt)) throw new InvalidDigestError(afterAt);
    path = rest.slice(0, at);
    tag = afterAt;
  } else {
    const colon = rest.lastIndexOf(':');
    const candidate = colon >= 0 ? rest.slice(colon + 1) : '';
    if (colon >= 0 && TAG.test(candidate) && !candidate.includes('/')) {
      path = rest.slice(0, colon);
      tag = candidate;
    }
  }
  if (path === '') throw new InputError(`${input}: empty ${what} name`);
  return tag === undefined ? { path } : { path, tag };
}
