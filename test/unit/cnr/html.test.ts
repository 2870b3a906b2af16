import { describe, expect, it } from 'vitest';
import type { ListEntry, PackageRecord, ReleaseRecord } from '../../../src/cnr/model/views.js';
import { formatBytes } from '../../../src/util/bytes.js';
import { filterEntries, renderError, renderIndex, renderNotFound, renderPackage } from '../../../src/cnr/server/html.js';
import { discoveryMeta, escapeHtml } from '../../../src/cnr/server/html-parts.js';

const HOST = 'cnr.example:5000';
const DIGEST = '72ed15c9a5961d5a6a3b6d8a2b1bd0ef72ed15c9a5961d5a6a3b6d8a2b1bd0ef';

function rec(release: string, mediaType: string, extra: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    package: 'acme/web',
    release,
    mediaType,
    createdAt: '2026-12-01T19:02:25.981527',
    metadata: null,
    digest: DIGEST,
    size: 583,
    helmChart: false,
    blob: { mediaType: 'application/vnd.cnr.package.helm.v0.tar+gzip', digest: `sha256:${'0'.repeat(64)}`, size: 583 },
    ...extra,
  };
}

function pkg(releases: ReleaseRecord[], channels: PackageRecord['channels'] = [], name = 'acme/web'): PackageRecord {
  return { package: name, createdAt: '2026-12-01T19:02:25.981527', releases: releases.map((r) => ({ ...r, package: name })), channels };
}

function entry(name: string, extra: Partial<ListEntry> = {}): ListEntry {
  return { name, default: '1.0.0', releases: ['1.0.0'], manifests: ['helm'], created_at: '2026-12-01T19:02:25.981527', visibility: 'public', ...extra };
}

const WRITES = { readOnly: false, credentials: false };
const XSS = '<script>alert(1)</script>';

/** The <meta name="appr-package"> content, as appr's HTMLParser (entities decoded) reads it. */
function metaContent(html: string): string[] {
  return [...html.matchAll(/<meta name="appr-package" content="([^"]*)">/g)].map((m) => m[1]!.replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>'));
}

describe('escapeHtml', () => {
  it('escapes the five characters that end text or an attribute', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    expect(escapeHtml('acme/web 1.0.0+build.1')).toBe('acme/web 1.0.0+build.1');
  });
});

describe('renderPackage', () => {
  it('escapes <script> in metadata, names and channel names', () => {
    const html = renderPackage({
      host: HOST,
      record: pkg([rec('1.0.0', 'kpm', { metadata: { description: XSS, [`k${XSS}`]: `"><img src=x onerror=alert(1)>` } })], [{ name: `dev${XSS}`, current: '1.0.0', releases: ['1.0.0'] }], `evil${XSS}/x`),
    });
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    // The only <script-like thing is none at all: the page has no script element.
    expect(html).not.toMatch(/<script/i);
  });

  it('lists releases highest first with media types, short digest, size and metadata', () => {
    const html = renderPackage({
      host: HOST,
      record: pkg([rec('1.0.0', 'kpm'), rec('1.10.0', 'helm', { helmChart: true }), rec('1.2.0', 'kpm', { metadata: { team: 'web' } }), rec('1.10.0', 'kpm')]),
    });
    const order = ['id="release-1.10.0"', 'id="release-1.2.0"', 'id="release-1.0.0"'].map((s) => html.indexOf(s));
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(html).toContain(`title="${DIGEST}">${DIGEST.slice(0, 12)}</code>`);
    expect(html).toContain('583 B');
    expect(html).toContain('&quot;team&quot;: &quot;web&quot;');
    expect(html).toContain(`curl -o acme_web_72ed15c9.tar.gz http://${HOST}/cnr/api/v1/packages/acme/web/1.10.0/helm/pull`);
    expect(html).toContain(`curl -o acme_web_72ed15c9.tar.gz http://${HOST}/cnr/api/v1/packages/acme/web/1.10.0/kpm/pull`);
  });

  it('shows helm pull only for Helm charts, and only when a registry holds the store', () => {
    const record = pkg([rec('2.0.0', 'helm', { helmChart: true }), rec('1.0.0', 'helm', { helmChart: false }), rec('1.0.0', 'kpm')]);
    const onRegistry = renderPackage({ host: HOST, record, ociRepository: 'registry.example/apps/acme/web' });
    expect(onRegistry).toContain('helm pull oci://registry.example/apps/acme/web --version 2.0.0');
    expect(onRegistry).not.toContain('--version 1.0.0');
    expect(onRegistry.match(/helm pull/g)).toHaveLength(1);
    const onLayout = renderPackage({ host: HOST, record });
    expect(onLayout).not.toContain('helm pull');
  });

  it('carries the appr discovery tag of the package in <head>', () => {
    const html = renderPackage({ host: HOST, record: pkg([rec('1.0.0', 'helm')]) });
    const head = html.slice(0, html.indexOf('</head>'));
    expect(metaContent(head)).toEqual([`${HOST}/acme/web http://${HOST}/cnr/api/v1/packages/acme/web/{version}/{media_type}/pull`]);
    // appr splits the content on one space into exactly two fields.
    expect(metaContent(head)[0]!.split(' ')).toHaveLength(2);
  });

  it('lists channels with current and members, and marks the current release', () => {
    const html = renderPackage({
      host: HOST,
      record: pkg([rec('1.0.1', 'kpm'), rec('2.0.1', 'kpm')], [{ name: 'stable', current: '2.0.1', releases: ['1.0.1', '2.0.1'] }]),
    });
    expect(html).toMatch(/<td><b>stable<\/b><\/td><td><a href="#release-2\.0\.1"><code>2\.0\.1<\/code><\/a><\/td><td><a href="#release-2\.0\.1">.*2\.0\.1.*1\.0\.1/);
    expect(html).toContain('<span class="tag channel" title="current of channel stable">stable</span>');
  });
});

describe('renderIndex', () => {
  it('lists packages with default release, media types, created_at and a namespace link', () => {
    const html = renderIndex({ host: HOST, entries: [entry('acme/web', { default: '1.2.0', manifests: ['helm', 'kpm'] }), entry('beta/db')], filter: {}, writes: WRITES });
    expect(html).toContain('<a class="pkg" href="/acme/web">acme/web</a>');
    expect(html).toContain('href="/?namespace=acme"');
    expect(html).toContain('<code>1.2.0</code>');
    expect(html).toContain('<span class="badge">helm</span> <span class="badge">kpm</span>');
    expect(html).toContain('2026-12-01 19:02:25 UTC');
    expect(html).toMatch(/<form class="search" method="get" action="\/"[^>]*>[\s\S]*<input type="search" name="q"/);
  });

  it('filters by substring and namespace', () => {
    const entries = [entry('acme/web'), entry('acme/db'), entry('beta/web'), entry('x/a(b')];
    expect(filterEntries(entries, { q: 'web' }).map((e) => e.name)).toEqual(['acme/web', 'beta/web']);
    expect(filterEntries(entries, { namespace: 'acme' }).map((e) => e.name)).toEqual(['acme/db', 'acme/web']);
    expect(filterEntries(entries, { q: 'a(' }).map((e) => e.name)).toEqual(['x/a(b']);
    const html = renderIndex({ host: HOST, entries, filter: { q: 'web', namespace: 'beta' }, writes: WRITES });
    expect(html).toContain('1 of 4 packages');
    expect(html).not.toContain('href="/acme/web"');
    expect(html).toContain('name="namespace" value="beta"');
    expect(html).toContain('name="q" value="web"');
  });

  it('escapes the search text it echoes', () => {
    const html = renderIndex({ host: HOST, entries: [entry('acme/web')], filter: { q: `"><script>x</script>` }, writes: WRITES });
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"');
    expect(html).toContain('No package contains');
  });

  it('says an empty store is empty and shows the push command', () => {
    const html = renderIndex({ host: HOST, entries: [], filter: {}, writes: WRITES });
    expect(html).toContain('No packages yet');
    expect(html).toContain(`curl -X POST http://${HOST}/cnr/api/v1/packages/NAMESPACE/NAME`);
    expect(renderIndex({ host: HOST, entries: [], filter: {}, writes: { readOnly: false, credentials: true } })).toContain('curl -u USER:PASSWORD -X POST');
    const readOnly = renderIndex({ host: HOST, entries: [], filter: {}, writes: { readOnly: true, credentials: false } });
    expect(readOnly).toContain('read-only');
    expect(readOnly).not.toContain('curl');
  });

  it('carries the appr discovery tag for every package ({name}), which appr reads from the root page', () => {
    const html = renderIndex({ host: HOST, entries: [], filter: {}, writes: WRITES });
    expect(metaContent(html)).toEqual([`${HOST}/{name} http://${HOST}/cnr/api/v1/packages/{name}/{version}/{media_type}/pull`]);
  });
});

describe('discoveryMeta', () => {
  it('is the package name, one space, the URL template; attribute-escaped', () => {
    expect(discoveryMeta('h:1', 'a/b')).toBe('<meta name="appr-package" content="h:1/a/b http://h:1/cnr/api/v1/packages/a/b/{version}/{media_type}/pull">');
    expect(discoveryMeta('h"><script>', 'a/b')).not.toContain('"><script>');
  });
});

describe('error pages', () => {
  it('are HTML with the escaped name', () => {
    const html = renderNotFound(HOST, `a/${XSS}`);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('Package not found');
    expect(html).not.toMatch(/<script/i);
    expect(renderError(HOST, 503, 'Storage unavailable', 'try again')).toContain('try again');
  });
});

describe('formatBytes', () => {
  it.each([[0, '0 B'], [583, '583 B'], [1536, '1.5 KiB'], [64 * 1024 * 1024, '64 MiB']])('%d is %s', (n, text) => expect(formatBytes(n)).toBe(text));
});
