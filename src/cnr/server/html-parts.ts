import { parseFullName } from '../model/names.js';

/**
 * The small pieces the CNR pages are built of: escaping, URLs, appr's discovery tag, and the
 * markup of a name, a badge or a time. Every value from outside goes through `escapeHtml` here
 * or in the page that uses it.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for an HTML text node or a quoted attribute value. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** `http://HOST`, where HOST is how the client reached this server (its Host header). */
export function baseUrl(host: string): string {
  return `http://${host}`;
}

/** The pull URL of one (release, media type), or a template of it. */
export function pullUrl(host: string, pkg: string, release: string, mediaType: string): string {
  return `${baseUrl(host)}/cnr/api/v1/packages/${pkg}/${release}/${mediaType}/pull`;
}

/**
 * appr's discovery tag. appr resolves `HOST/NS/NAME` by fetching `http(s)://HOST?appr-discovery=1`
 * and reading `<meta name="appr-package" content="...">`, whose content is two fields separated
 * by one space:
 *
 *   1. a package name as appr users write it, `HOST/NS/NAME`;
 *   2. a URL template where the package is pulled from, in which appr replaces `{name}`
 *      (`NS/NAME`), `{version}` (the release or query), `{media_type}` (also spelled `{mediatype}`).
 *
 * appr replaces the placeholders in both fields and uses the URL of the field that equals the
 * package it looks for. A package page names its own package:
 * `HOST/NS/NAME http://HOST/cnr/api/v1/packages/NS/NAME/{version}/{media_type}/pull`; the root
 * page (what appr fetches) passes `{name}` and so answers for every package of this server.
 */
export function discoveryMeta(host: string, pkg: string): string {
  const content = `${host}/${pkg} ${pullUrl(host, pkg, '{version}', '{media_type}')}`;
  return `<meta name="appr-package" content="${escapeHtml(content)}">`;
}

/** A package's namespace and name; a name that does not parse is still split at its first `/` for display. */
export function splitName(full: string): { namespace: string; name: string } {
  try {
    return parseFullName(full);
  } catch {
    const at = full.indexOf('/');
    return at < 0 ? { namespace: full, name: '' } : { namespace: full.slice(0, at), name: full.slice(at + 1) };
  }
}

export const anchor = (release: string): string => `release-${release}`;

export function releaseLink(release: string): string {
  return `<a href="#${escapeHtml(anchor(release))}"><code>${escapeHtml(release)}</code></a>`;
}

export function badge(mediaType: string): string {
  return `<span class="badge">${escapeHtml(mediaType)}</span>`;
}

/** `2026-12-01T19:02:25.981527` as `2026-12-01 19:02:25 UTC`, the stored text in the title. */
export function time(createdAt: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(createdAt);
  const shown = m ? `${m[1]} ${m[2]} UTC` : createdAt;
  return `<time datetime="${escapeHtml(createdAt)}" title="${escapeHtml(createdAt)}">${escapeHtml(shown)}</time>`;
}
