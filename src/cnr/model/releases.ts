import semver from 'semver';
import { invalidRelease } from './errors.js';

/** Longest release we store: its tag `release-X` must fit the 128 characters of a tag. */
const MAX_RELEASE_LENGTH = 120;

/** A release as pushed: SemVer 2.0 exactly (no `v`, no partial versions), else 422 invalid-release. */
export function parseRelease(release: string): string {
  if (!isRelease(release)) {
    throw invalidRelease(`invalid release ${JSON.stringify(release)}: expected a SemVer 2.0 version such as 1.2.3 or 1.2.3-beta.1`, { version: release });
  }
  return release;
}

export function isRelease(release: string): boolean {
  if (release.length > MAX_RELEASE_LENGTH) return false;
  // semver.valid drops build metadata ("1.0.0+b.1" gives "1.0.0"): compare with it put back.
  const parsed = semver.parse(release);
  return parsed !== null && `${parsed.version}${parsed.build.length > 0 ? `+${parsed.build.join('.')}` : ''}` === release;
}

/** Highest first, SemVer precedence (build metadata breaks ties by text, so the order is total). */
export function sortDescending(releases: Iterable<string>): string[] {
  // Parsed once each, not once per comparison: a package may have hundreds of releases.
  const parsed = [...releases].map((r) => ({ r, v: semver.parse(r) }));
  return parsed.sort((a, b) => (a.v && b.v ? b.v.compare(a.v) || b.v.compareBuild(a.v) : a.r < b.r ? 1 : a.r > b.r ? -1 : 0)).map((p) => p.r);
}

/**
 * The release a path segment asks for among `releases`: `default` is the highest (prereleases
 * included, as the reference does); an exact version is itself; a range (`>1.2`,
 * `>=1.5,<2.0` with comma = and, `!=1.0.0`, `^1.0.0`, `~1.2`) is its highest match, where
 * prereleases match only when the range itself names one. Undefined when nothing matches;
 * 422 invalid-release when the query is none of these.
 */
export function selectRelease(releases: readonly string[], query: string): string | undefined {
  if (query === 'default') return sortDescending(releases)[0];
  if (isRelease(query)) return releases.includes(query) ? query : undefined;
  const { range, excluded } = parseRange(query);
  const includePrerelease = /\d-[0-9A-Za-z]/.test(query);
  const candidates = releases.filter((r) => !excluded.includes(r) && (includePrerelease || semver.prerelease(r) === null));
  const matching = candidates.filter((r) => semver.satisfies(r, range, { includePrerelease }));
  return sortDescending(matching)[0];
}

function parseRange(query: string): { range: string; excluded: string[] } {
  const bad = () => invalidRelease(`invalid release ${JSON.stringify(query)}: expected a SemVer version, "default", or a range such as ">=1.0.0,<2.0.0"`, { version: query });
  const parts = query.split(',').map((p) => p.trim());
  // A range names an operator: a bare "1.0" or "latest" is a malformed release, not a query.
  if (parts.some((p) => !/^(?:<=?|>=?|==?|!=|\^|~)\s*\d/.test(p))) throw bad();
  const excluded: string[] = [];
  const comparators: string[] = [];
  for (const part of parts) {
    if (part.startsWith('!=')) {
      const version = part.slice(2).trim();
      if (!isRelease(version)) throw bad();
      excluded.push(version);
    } else {
      comparators.push(part.replace(/^==/, '='));
    }
  }
  const range = comparators.join(' ') || '*';
  if (semver.validRange(range) === null) throw bad();
  return { range, excluded };
}
