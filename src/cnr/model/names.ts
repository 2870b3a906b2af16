import { invalidParameters } from './errors.js';

/**
 * Names of the CNR world and how they become OCI names. A package is exactly `namespace/name`,
 * each part one component of the OCI repository grammar (lowercase, digits, separators), so the
 * package is also the path of its OCI repository (`PREFIX/namespace/name`) and of its layout
 * directory: a name that passes here cannot hold `/`, `..` or anything a file system reads
 * specially.
 */
export interface PackageName {
  namespace: string;
  name: string;
  /** `namespace/name` */
  full: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
/** Short media types (`helm`, `kpm`, `docker-compose`): they go into tags and annotations. */
const SHORT_MEDIA_TYPE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A full CNR media type, any generation: `application/vnd.cnr.package-manifest.helm.v0.json`, `...appr.package.kpm.v1.tar+gzip`. */
const FULL_MEDIA_TYPE = /^application\/vnd\.(?:cnr|appr)\.package(?:-manifest)?\.([a-z0-9._-]+?)\.v\d+(?:\.json|\.tar\+gzip)$/;
/** Channel names become tags (`channel-NAME`): the tag grammar, less the prefix. */
const CHANNEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/;

export function parsePackageName(namespace: string, name: string): PackageName {
  for (const [what, value] of [['namespace', namespace], ['name', name]] as const) {
    if (!COMPONENT.test(value) || value.length > 128) {
      throw invalidParameters(
        `invalid package ${what} ${JSON.stringify(value)}: expected lowercase letters and digits, separated by '.', '_', '__' or '-' (the OCI repository grammar)`,
        { [what]: value },
      );
    }
  }
  return { namespace, name, full: `${namespace}/${name}` };
}

/** `namespace/name` as one string (a reference, a listed repository). */
export function parseFullName(full: string): PackageName {
  const parts = full.split('/');
  if (parts.length !== 2) throw invalidParameters(`invalid package name ${JSON.stringify(full)}: expected namespace/name`, { package: full });
  return parsePackageName(parts[0]!, parts[1]!);
}

/** The short form of a media type given in a path or a body: `helm`, or a full CNR media type reduced to its type. */
export function parseMediaType(input: string): string {
  const full = FULL_MEDIA_TYPE.exec(input);
  const short = full ? full[1]! : input;
  if (!SHORT_MEDIA_TYPE.test(short)) {
    throw invalidParameters(`invalid media type ${JSON.stringify(input)}: expected a short name such as helm, kpm or docker-compose`, { media_type: input });
  }
  return short;
}

export const manifestMediaType = (short: string): string => `application/vnd.cnr.package-manifest.${short}.v0.json`;
export const contentMediaType = (short: string): string => `application/vnd.cnr.package.${short}.v0.tar+gzip`;

export function parseChannelName(channel: string): string {
  if (!CHANNEL.test(channel)) {
    throw invalidParameters(`invalid channel name ${JSON.stringify(channel)}: expected letters, digits, '.', '_' or '-' (at most 120)`, { channel });
  }
  return channel;
}

/** The file name the reference server gives a blob: `myname_elasticsearch_72ed15c9.tar.gz`. */
export function blobFilename(pkg: PackageName, digestHex: string): string {
  return `${pkg.namespace}_${pkg.name}_${digestHex.slice(0, 8)}.tar.gz`;
}

// Tags. A release is SemVer and starts with a digit, so prefixed names never collide with one.
// `release-X` is the truth (the release's index); `X` is Helm's own tag for the same release;
// `channel-NAME` holds a channel. `+` is not allowed in tags: Helm writes it as `_`, and SemVer
// has no `_`, so the mapping reverses.
const RELEASE_PREFIX = 'release-';
const CHANNEL_PREFIX = 'channel-';

export const plainTag = (release: string): string => release.replaceAll('+', '_');
export const releaseTag = (release: string): string => `${RELEASE_PREFIX}${plainTag(release)}`;
export const channelTag = (channel: string): string => `${CHANNEL_PREFIX}${channel}`;

export type ParsedTag = { kind: 'release'; release: string } | { kind: 'channel'; channel: string } | { kind: 'plain'; release: string };

/** What a tag of a package repository is; undefined for tags this mapping did not write. */
export function parseTag(tag: string): ParsedTag | undefined {
  if (tag.startsWith(RELEASE_PREFIX)) return { kind: 'release', release: tag.slice(RELEASE_PREFIX.length).replaceAll('_', '+') };
  if (tag.startsWith(CHANNEL_PREFIX)) return { kind: 'channel', channel: tag.slice(CHANNEL_PREFIX.length) };
  if (/^[0-9]/.test(tag)) return { kind: 'plain', release: tag.replaceAll('_', '+') };
  return undefined;
}
