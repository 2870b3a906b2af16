import { blobFilename } from '../model/names.js';
import { formatBytes } from '../../util/bytes.js';
import { sortDescending } from '../model/releases.js';
import type { ListEntry, PackageRecord, ReleaseRecord } from '../model/views.js';
import { pageFrame } from './html-frame.js';
import { anchor, badge, baseUrl, discoveryMeta, escapeHtml, pullUrl, releaseLink, splitName, time } from './html-parts.js';

/**
 * The browser pages of the CNR server, as pure functions from data to HTML text: no I/O, no
 * request objects. Everything that reaches a page from outside (package names, metadata,
 * channel names, the query, the Host header) goes through `escapeHtml`; the server also sends a
 * Content-Security-Policy without scripts, so markup that slipped through could not run.
 */

/** Most packages listed on one page; the search narrows the rest. */
export const INDEX_LIMIT = 500;

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
  return pageFrame({ title, host, query: filter.q ?? '', namespace: filter.namespace ?? '', head: discoveryMeta(host, '{name}'), body: parts.join('\n') });
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
  return pageFrame({ title: pkg, host, query: '', namespace: '', head: discoveryMeta(host, pkg), body: parts.join('\n') });
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
  return pageFrame({ title: `${status} ${heading}`, host, query: '', namespace: '', head: '', body });
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
