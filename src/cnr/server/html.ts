import { blobFilename, parseFullName } from '../model/names.js';
import { formatBytes } from '../../util/bytes.js';
import { sortDescending } from '../model/releases.js';
import type { ListEntry, PackageRecord, ReleaseRecord } from '../model/views.js';

/**
 * The browser pages of the CNR server, as pure functions from data to HTML text: no I/O, no
 * request objects. Everything that reaches a page from outside (package names, metadata,
 * channel names, the query, the Host header) goes through `escapeHtml`; the server also sends a
 * Content-Security-Policy without scripts, so markup that slipped through could not run.
 */

/** The Content-Security-Policy of every page: no scripts, no loads, inline styles, forms to this origin. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";

/** Most packages listed on one page; the search narrows the rest. */
export const INDEX_LIMIT = 500;

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

export interface IndexFilter {
  /** A plain substring of `namespace/name`, as the API's search takes it. */
  q?: string;
  /** Only this namespace's packages. */
  namespace?: string;
}

/** The entries a filter keeps, sorted by name. */
export function filterEntries(entries: readonly ListEntry[], filter: IndexFilter): ListEntry[] {
  const { q, namespace } = filter;
  return entries
    .filter((e) => (namespace ? e.name.startsWith(`${namespace}/`) : true) && (q ? e.name.includes(q) : true))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface WriteAccess {
  /** The server refuses writes: nothing can be pushed through it. */
  readOnly: boolean;
  /** Writes need a user's credentials (`curl -u`). */
  credentials: boolean;
}

export interface IndexPage {
  host: string;
  /** Every package of the store. */
  entries: readonly ListEntry[];
  filter: IndexFilter;
  writes: WriteAccess;
}

/** `GET /`: the packages (filtered), a search box, the push command when the store is empty. */
export function renderIndex(page: IndexPage): string {
  const { host, filter } = page;
  const shown = filterEntries(page.entries, filter);
  const filtering = Boolean(filter.q || filter.namespace);
  const parts: string[] = [];
  parts.push(`<h1>Packages <span class="count">${page.entries.length}</span></h1>`);
  if (page.entries.length === 0) {
    parts.push(emptyStore(host, page.writes));
  } else {
    if (filtering) {
      const what = [filter.namespace ? `in namespace <b>${escapeHtml(filter.namespace)}</b>` : '', filter.q ? `matching <b>${escapeHtml(filter.q)}</b>` : ''].filter(Boolean).join(' ');
      parts.push(`<p class="filter">${shown.length} of ${page.entries.length} packages ${what} · <a href="/">show all</a></p>`);
    }
    if (shown.length === 0) {
      parts.push(`<p class="empty">No package ${filter.q ? `contains <b>${escapeHtml(filter.q)}</b>` : 'matches'}${filter.namespace ? ` in namespace <b>${escapeHtml(filter.namespace)}</b>` : ''}.</p>`);
    } else {
      parts.push(packageTable(shown.slice(0, INDEX_LIMIT), filter));
      if (shown.length > INDEX_LIMIT) parts.push(`<p class="filter">The first ${INDEX_LIMIT} of ${shown.length} are shown; search to narrow them.</p>`);
    }
  }
  parts.push(`<p class="foot">CNR API: <code>${escapeHtml(baseUrl(host))}/cnr/api/v1/packages</code></p>`);
  const title = filter.q ? `Packages matching ${filter.q}` : 'Packages';
  return layout({ title, host, query: filter.q ?? '', namespace: filter.namespace ?? '', head: discoveryMeta(host, '{name}'), body: parts.join('\n') });
}

function packageTable(entries: readonly ListEntry[], filter: IndexFilter): string {
  const rows = entries.map((e) => {
    const { namespace } = splitName(e.name);
    const nsQuery = new URLSearchParams({ namespace, ...(filter.q ? { q: filter.q } : {}) }).toString();
    return `<tr>
<td><a class="pkg" href="/${escapeHtml(e.name)}">${escapeHtml(e.name)}</a></td>
<td><a class="ns" href="/?${escapeHtml(nsQuery)}" title="only namespace ${escapeHtml(namespace)}">${escapeHtml(namespace)}</a></td>
<td><code>${escapeHtml(e.default)}</code>${e.releases.length > 1 ? ` <span class="muted">· ${e.releases.length} releases</span>` : ''}</td>
<td>${e.manifests.map(badge).join(' ')}</td>
<td>${time(e.created_at)}</td>
</tr>`;
  });
  return `<table class="list">
<thead><tr><th>Package</th><th>Namespace</th><th>Default release</th><th>Media types</th><th>Created</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

function emptyStore(host: string, writes: WriteAccess): string {
  if (writes.readOnly) {
    return `<p class="empty">No packages yet. This server is read-only: packages come into its storage through another server.</p>`;
  }
  const auth = writes.credentials ? ' -u USER:PASSWORD' : '';
  const command = `curl${auth} -X POST ${baseUrl(host)}/cnr/api/v1/packages/NAMESPACE/NAME \\
  -d "{\\"blob\\": \\"$(base64 -w0 mychart-1.0.0.tgz)\\", \\"release\\": \\"1.0.0\\", \\"media_type\\": \\"helm\\"}"`;
  return `<p class="empty">No packages yet. Push the first one (a Helm chart here; any <code>.tar.gz</code> with another <code>media_type</code>):</p>
<pre class="cmd">${escapeHtml(command)}</pre>`;
}

export interface PackagePage {
  host: string;
  record: PackageRecord;
  /** `registry/prefix/ns/name` when a registry holds the packages (Helm can pull its charts); undefined otherwise. */
  ociRepository?: string;
}

/** `GET /NS/NAME`: releases (highest first) with the commands that fetch them, channels, appr's discovery tag. */
export function renderPackage(page: PackagePage): string {
  const { host, record } = page;
  const pkg = record.package;
  const releases = groupByRelease(record.releases);
  const latest = releases[0]?.release;
  const { namespace } = splitName(pkg);
  const parts: string[] = [];
  parts.push(`<nav class="crumbs"><a href="/">Packages</a> / <a href="/?${escapeHtml(new URLSearchParams({ namespace }).toString())}">${escapeHtml(namespace)}</a></nav>`);
  parts.push(`<h1>${escapeHtml(pkg)}</h1>`);
  const summary = [
    latest === undefined ? '' : `default release <code>${escapeHtml(latest)}</code>`,
    `${releases.length} ${releases.length === 1 ? 'release' : 'releases'}`,
    record.createdAt ? `created ${time(record.createdAt)}` : '',
  ].filter(Boolean);
  parts.push(`<p class="summary">${summary.join(' · ')}</p>`);

  parts.push('<h2>Releases</h2>');
  for (const { release, records } of releases) {
    const current = record.channels.filter((c) => c.current === release).map((c) => c.name).sort();
    const tags = [
      release === latest ? '<span class="tag default">default</span>' : '',
      ...current.map((c) => `<span class="tag channel" title="current of channel ${escapeHtml(c)}">${escapeHtml(c)}</span>`),
    ].filter(Boolean);
    parts.push(`<section class="release" id="${escapeHtml(anchor(release))}">
<h3>${escapeHtml(release)}${tags.length ? ` ${tags.join(' ')}` : ''}</h3>
${records.map((r) => mediaTypeBlock(host, r, page.ociRepository)).join('\n')}
</section>`);
  }

  parts.push('<h2>Channels</h2>');
  if (record.channels.length === 0) {
    parts.push('<p class="muted">No channels.</p>');
  } else {
    const rows = [...record.channels]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((c) => `<tr><td><b>${escapeHtml(c.name)}</b></td><td>${releaseLink(c.current)}</td><td>${sortDescending(c.releases).map(releaseLink).join(', ')}</td></tr>`);
    parts.push(`<table class="list channels">
<thead><tr><th>Channel</th><th>Current</th><th>Releases</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`);
  }
  return layout({ title: pkg, host, query: '', namespace: '', head: discoveryMeta(host, pkg), body: parts.join('\n') });
}

function mediaTypeBlock(host: string, r: ReleaseRecord, ociRepository: string | undefined): string {
  const { namespace, name } = splitName(r.package);
  const file = blobFilename({ namespace, name, full: r.package }, r.digest);
  const commands = [`curl -o ${file} ${pullUrl(host, r.package, r.release, r.mediaType)}`];
  if (r.helmChart && ociRepository) commands.push(`helm pull oci://${ociRepository} --version ${r.release}`);
  const facts = [
    badge(r.mediaType),
    `<span title="created_at">${time(r.createdAt)}</span>`,
    `<span>digest <code title="${escapeHtml(r.digest)}">${escapeHtml(r.digest.slice(0, 12))}</code></span>`,
    `<span>${escapeHtml(formatBytes(r.size))}</span>`,
    r.helmChart ? '<span class="muted">Helm OCI chart</span>' : '',
  ].filter(Boolean);
  const metadata = r.metadata === null || Object.keys(r.metadata).length === 0
    ? ''
    : `<details class="metadata" open><summary>metadata</summary><pre>${escapeHtml(JSON.stringify(r.metadata, null, 2))}</pre></details>`;
  return `<div class="mt">
<div class="facts">${facts.join('<span class="sep">·</span>')}</div>
${commands.map((c) => `<pre class="cmd">${escapeHtml(c)}</pre>`).join('\n')}
${metadata}
</div>`;
}

/** A 404 (or other failure) page for browsers. */
export function renderError(host: string, status: number, heading: string, message: string): string {
  const body = `<h1>${escapeHtml(heading)}</h1>
<p>${escapeHtml(message)}</p>
<p><a href="/">All packages</a></p>`;
  return layout({ title: `${status} ${heading}`, host, query: '', namespace: '', head: '', body });
}

export function renderNotFound(host: string, pkg: string): string {
  return renderError(host, 404, 'Package not found', `There is no package ${pkg} here, or it has no release.`);
}


/** Releases highest first, each with its records in push order. */
function groupByRelease(records: readonly ReleaseRecord[]): { release: string; records: ReleaseRecord[] }[] {
  const byRelease = new Map<string, ReleaseRecord[]>();
  for (const r of records) byRelease.set(r.release, [...(byRelease.get(r.release) ?? []), r]);
  return sortDescending(byRelease.keys()).map((release) => ({ release, records: byRelease.get(release)! }));
}

function splitName(full: string): { namespace: string; name: string } {
  try {
    return parseFullName(full);
  } catch {
    const at = full.indexOf('/');
    return at < 0 ? { namespace: full, name: '' } : { namespace: full.slice(0, at), name: full.slice(at + 1) };
  }
}

const anchor = (release: string): string => `release-${release}`;

function releaseLink(release: string): string {
  return `<a href="#${escapeHtml(anchor(release))}"><code>${escapeHtml(release)}</code></a>`;
}

function badge(mediaType: string): string {
  return `<span class="badge">${escapeHtml(mediaType)}</span>`;
}

/** `2026-12-01T19:02:25.981527` as `2026-12-01 19:02:25 UTC`, the stored text in the title. */
function time(createdAt: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(createdAt);
  const shown = m ? `${m[1]} ${m[2]} UTC` : createdAt;
  return `<time datetime="${escapeHtml(createdAt)}" title="${escapeHtml(createdAt)}">${escapeHtml(shown)}</time>`;
}

interface Layout {
  title: string;
  host: string;
  query: string;
  namespace: string;
  head: string;
  body: string;
}

function layout(l: Layout): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${l.head}
<title>${escapeHtml(l.title)} · CNR ${escapeHtml(l.host)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<a class="brand" href="/">Container Native Registry <span>${escapeHtml(l.host)}</span></a>
<form class="search" method="get" action="/" role="search">
${l.namespace ? `<input type="hidden" name="namespace" value="${escapeHtml(l.namespace)}">` : ''}<input type="search" name="q" value="${escapeHtml(l.query)}" placeholder="Search packages" aria-label="Search packages">
<button type="submit">Search</button>
</form>
</header>
<main>
${l.body}
</main>
</body>
</html>
`;
}

const STYLE = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --soft: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header { display: flex; align-items: center; justify-content: space-between; gap: 1rem; flex-wrap: wrap; padding: .75rem 1.5rem; background: #24292f; }
header .brand { color: #fff; font-weight: 600; font-size: 1.05rem; }
header .brand span { color: #9ea7b3; font-weight: 400; margin-left: .4rem; }
.search { display: flex; gap: .4rem; }
.search input { width: 18rem; padding: .35rem .6rem; border: 1px solid #57606a; border-radius: 6px; background: #fff; font: inherit; }
.search button { padding: .35rem .9rem; border: 1px solid #57606a; border-radius: 6px; background: #f6f8fa; font: inherit; cursor: pointer; }
main { max-width: 72rem; margin: 0 auto; padding: 1.25rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 .75rem; word-break: break-all; }
h1 .count { font-size: .9rem; font-weight: 500; color: var(--muted); background: var(--soft); border: 1px solid var(--line); border-radius: 1rem; padding: .05rem .55rem; vertical-align: middle; }
h2 { font-size: 1.2rem; margin: 1.75rem 0 .6rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
table.list { width: 100%; border-collapse: collapse; border: 1px solid var(--line); border-radius: 6px; }
table.list th, table.list td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid var(--line); vertical-align: top; }
table.list th { background: var(--soft); font-weight: 600; font-size: .85rem; color: var(--muted); }
table.list tr:last-child td { border-bottom: 0; }
.pkg { font-weight: 600; }
.badge { display: inline-block; font-size: .78rem; padding: 0 .45rem; border: 1px solid var(--line); border-radius: 1rem; background: var(--soft); }
.tag { display: inline-block; font-size: .75rem; font-weight: 500; padding: 0 .45rem; border-radius: 1rem; vertical-align: middle; }
.tag.default { background: #ddf4ff; color: #0550ae; }
.tag.channel { background: #dafbe1; color: #116329; }
.muted, .summary, .filter, .foot, .crumbs { color: var(--muted); }
.foot { margin-top: 2rem; font-size: .85rem; }
.empty { font-size: 1rem; }
.release { border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; margin: 0 0 .9rem; }
.mt + .mt { border-top: 1px dashed var(--line); margin-top: .6rem; padding-top: .6rem; }
.facts { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem; font-size: .9rem; }
.facts .sep { color: var(--line); }
pre { margin: .45rem 0 0; padding: .5rem .7rem; background: var(--soft); border: 1px solid var(--line); border-radius: 6px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
pre.cmd { user-select: all; }
details.metadata { margin-top: .45rem; }
details.metadata summary { cursor: pointer; color: var(--muted); font-size: .85rem; }
`;
