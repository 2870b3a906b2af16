import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startCnrServer, type Answer, type CnrServer } from '../helpers/cnr-server.js';
import { makeChart, makePackage, pushBody } from '../helpers/cnr-packages.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);

const REFERENCE = join(import.meta.dirname, '..', 'fixtures', 'cnr', 'reference-store');
const answers = JSON.parse(readFileSync(join(REFERENCE, 'answers', 'packages.json'), 'utf8')) as Record<string, { all: Record<string, unknown>[]; channels: unknown[] }>;

/** A blob of the reference store: its file is the base64 text of the gzip bytes. */
function referenceBlobText(pkg: string, hex: string): string {
  return readFileSync(join(REFERENCE, 'cnr', 'packages', ...pkg.split('/'), 'digests', 'sha256', hex), 'utf8').trim();
}
const referenceBlob = (pkg: string, hex: string): Buffer => Buffer.from(referenceBlobText(pkg, hex), 'base64');

/** The CNR digest: sha256 of the gunzipped tar (not of the gzip bytes). */
const cnrDigest = (gz: Buffer): string => createHash('sha256').update(gunzipSync(gz)).digest('hex');
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

const ROCKETCHAT = {
  kpm001: referenceBlob('titi/rocketchat', 'a4cdc549e5bd907e78cc78d3239c89924ab5ce92e813726bdfff3335d3d1627d'),
  helm001: referenceBlob('titi/rocketchat', 'feab055f5caa2f17adbceee75c9c2e40f53f8049df1ed821168922b5e93153bf'),
  kpm101: referenceBlob('titi/rocketchat', 'a41ec29b3e3f7a42bd8d47a0ad1e982e474b80dd8ebb5106bde033901c4257b9'),
  kpm201: referenceBlob('titi/rocketchat', 'cba6371bf66e762ac2f26b670a0f792b3f49e8739d50d7cdaca70645cc102553'),
};
const DEMO_HEX = '72ed15c9a65961ecd034cca098ec18eb99002cd402824aae8a674a8ae41bd0ef';

const CREATED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;
const VIEW_KEYS = ['content', 'created_at', 'mediaType', 'metadata', 'package', 'release'];

function withoutCreatedAt(views: unknown): unknown {
  return (views as Record<string, unknown>[]).map(({ created_at: _c, ...rest }) => rest);
}

/** The error envelope, with its status and slug. */
function expectError(res: Answer, status: number, code: string): void {
  expect(res.status, res.body.toString()).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  const body = res.json as { code: unknown; message: unknown; details: unknown };
  expect(Object.keys(body).sort()).toEqual(['code', 'details', 'message']);
  expect(body.code).toBe(code);
  expect(typeof body.message).toBe('string');
  expect(typeof body.details).toBe('object');
}

const STORES = ['layout', 'registry'] as const;

describe.each(STORES)('CNR API conformance on the %s store', (kind) => {
  let root: string;
  let registry: TestRegistry | undefined;
  let layoutDir: string;
  let server: CnrServer;
  /** `http://127.0.0.1:PORT/api/v1/packages` */
  let api: string;

  const push = async (pkg: string, blob: Buffer, release: string, mediaType?: string, extra: Record<string, unknown> = {}, query = ''): Promise<Answer> =>
    call(`${api}/${pkg}${query}`, { method: 'POST', body: pushBody(blob, release, mediaType, extra) });
  const pushOk = async (pkg: string, blob: Buffer, release: string, mediaType?: string, extra: Record<string, unknown> = {}): Promise<void> => {
    const res = await push(pkg, blob, release, mediaType, extra);
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.json).toEqual({ status: 'ok' });
  };
  const get = (path: string): Promise<Answer> => call(`${api}/${path}`);
  const ok = async (path: string, init: Parameters<typeof call>[1] = {}): Promise<unknown> => {
    const res = await call(`${api}/${path}`, init);
    expect(res.status, `${init.method ?? 'GET'} ${path}: ${res.body.toString()}`).toBe(200);
    return res.json;
  };
  const del = (path: string): Promise<Answer> => call(`${api}/${path}`, { method: 'DELETE' });
  const post = (path: string): Promise<Answer> => call(`${api}/${path}`, { method: 'POST' });

  /** An OCI blob of a package repository, read from the storage itself (not through cnr serve). */
  const ociBlob = async (pkg: string, digest: string): Promise<Buffer> => {
    if (registry) {
      const res = await request(`http://${registry.host}/v2/cnrtest/${pkg}/blobs/${digest}`);
      expect(res.statusCode).toBe(200);
      return Buffer.from(await res.body.arrayBuffer());
    }
    return readFile(join(layoutDir, ...pkg.split('/'), 'blobs', 'sha256', digest.slice('sha256:'.length)));
  };
  /** The manifest a tag names, read from the storage itself. */
  const ociManifest = async (pkg: string, tag: string): Promise<{ digest: string; json: Record<string, unknown> }> => {
    if (registry) {
      const res = await request(`http://${registry.host}/v2/cnrtest/${pkg}/manifests/${tag}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' },
      });
      const bytes = Buffer.from(await res.body.arrayBuffer());
      expect(res.statusCode, bytes.toString()).toBe(200);
      return { digest: `sha256:${sha256(bytes)}`, json: JSON.parse(bytes.toString()) };
    }
    const index = JSON.parse(await readFile(join(layoutDir, ...pkg.split('/'), 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
    expect(entry, `tag ${tag} in ${JSON.stringify(index)}`).toBeDefined();
    return { digest: entry!.digest, json: JSON.parse((await ociBlob(pkg, entry!.digest)).toString()) };
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), `cnab-oci-cnr-api-${kind}-`));
    layoutDir = join(root, 'store');
    let storage = `oci:${layoutDir}`;
    if (kind === 'registry') {
      registry = await startRegistry();
      storage = `${registry.host}/cnrtest`;
    }
    server = await startCnrServer({ storage });
    api = `${server.url}/api/v1/packages`;
    // The reference suite's fixture, built through the API in the reference's order, with the
    // reference store's own blobs (so digests and file names are the reference's).
    await pushOk('titi/rocketchat', ROCKETCHAT.kpm001, '0.0.1', 'kpm');
    await pushOk('titi/rocketchat', ROCKETCHAT.helm001, '0.0.1', 'helm');
    await pushOk('titi/rocketchat', ROCKETCHAT.kpm101, '1.0.1', 'kpm');
    await pushOk('titi/rocketchat', ROCKETCHAT.kpm201, '2.0.1', 'kpm');
    await ok('titi/rocketchat/channels/dev/1.0.1', { method: 'POST' });
    await ok('titi/rocketchat/channels/stable/1.0.1', { method: 'POST' });
    await ok('titi/rocketchat/channels/stable/2.0.1', { method: 'POST' });
  });

  afterAll(async () => {
    const code = await server?.stop();
    await registry?.stop();
    await rm(root, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  it('answers /version under both base paths', async () => {
    for (const path of ['/version', '/cnr/version']) {
      const res = await call(`${server.url}${path}`);
      expect(res.status).toBe(200);
      expect(typeof (res.json as Record<string, unknown>)['cnr-api']).toBe('string');
    }
  });

  it('shows the fixture as the reference server answered it', async () => {
    const all = (await ok('titi/rocketchat')) as Record<string, unknown>[];
    expect(withoutCreatedAt(all)).toEqual(withoutCreatedAt(answers['titi/rocketchat']!.all));
    for (const view of all) {
      expect(Object.keys(view).sort()).toEqual(VIEW_KEYS);
      expect(view.created_at).toMatch(CREATED_AT);
    }
    expect(await ok('titi/rocketchat/channels')).toEqual(answers['titi/rocketchat']!.channels);
  });

  describe('list', () => {
    beforeAll(async () => {
      await pushOk('lists/chart', await makeChart('chart', '1.0.0'), '1.0.0', 'helm');
      await pushOk('other/thing', await makePackage('thing'), '0.1.0');
    });

    it('lists packages with {name, default, releases, manifests, visibility, created_at}', async () => {
      const list = (await ok('')) as Record<string, unknown>[];
      const entry = list.find((e) => e.name === 'titi/rocketchat');
      expect(entry).toBeDefined();
      expect(Object.keys(entry!).sort()).toEqual(['created_at', 'default', 'manifests', 'name', 'releases', 'visibility']);
      const first = ((await ok('titi/rocketchat/0.0.1/kpm')) as { created_at: string }).created_at;
      expect(entry).toEqual({ name: 'titi/rocketchat', default: '2.0.1', releases: ['2.0.1', '1.0.1', '0.0.1'], manifests: ['kpm'], visibility: 'public', created_at: first });
      expect(list.find((e) => e.name === 'lists/chart')).toMatchObject({ default: '1.0.0', releases: ['1.0.0'], manifests: ['helm'] });
      // The reference's order: oldest package first.
      const names = list.map((e) => e.name);
      expect(names.indexOf('titi/rocketchat')).toBeLessThan(names.indexOf('lists/chart'));
    });

    it('filters by namespace, query and media type', async () => {
      const names = async (query: string) => ((await ok(`?${query}`)) as { name: string }[]).map((e) => e.name).sort();
      expect(await names('namespace=titi')).toEqual(['titi/rocketchat']);
      expect(await names('namespace=tit')).toEqual([]);
      expect(await names('namespace=nobody')).toEqual([]);
      expect(await names('query=ocketch')).toEqual(['titi/rocketchat']);
      expect(await names('query=s%2Fch')).toEqual(['lists/chart']);
      expect(await names('query=zzz')).toEqual([]);
      expect(await names('namespace=lists&query=chart')).toEqual(['lists/chart']);
      expect(await names('namespace=titi&query=chart')).toEqual([]);
      const kpm = await names('media_type=kpm');
      expect(kpm).toContain('titi/rocketchat');
      expect(kpm).toContain('other/thing');
      expect(kpm).not.toContain('lists/chart');
      const helm = await names('media_type=helm');
      expect(helm).toContain('lists/chart');
      // rocketchat has a helm release, but its default release (2.0.1) holds kpm only.
      expect(helm).not.toContain('titi/rocketchat');
      expect(await names(`media_type=${encodeURIComponent('application/vnd.cnr.package-manifest.helm.v0.json')}`)).toEqual(helm);
    });

    it('does not list a package without releases, and shows it as 404', async () => {
      await pushOk('lists/gone', await makePackage('gone'), '1.0.0');
      expect(((await ok('')) as { name: string }[]).map((e) => e.name)).toContain('lists/gone');
      expect((await del('lists/gone/1.0.0/kpm')).status).toBe(200);
      expect(((await ok('')) as { name: string }[]).map((e) => e.name)).not.toContain('lists/gone');
      expect(await ok('search?q=lists/gone')).toEqual([]);
      expectError(await get('lists/gone'), 404, 'package-not-found');
    });
  });

  it('searches with a plain substring, whatever its characters', async () => {
    expect(await ok('search?q=rocket')).toEqual(['titi/rocketchat']);
    expect(await ok('search?q=titi%2Frocketchat')).toEqual(['titi/rocketchat']);
    expect(await ok('search?q=nomatch')).toEqual([]);
    for (const q of ['(', ')', '[', '*', '.*', '\\', 't.t', '+', '?', '^titi']) {
      const res = await get(`search?q=${encodeURIComponent(q)}`);
      expect(res.status, `q=${q}: ${res.body.toString()}`).toBe(200);
      expect(res.json, `q=${q}`).toEqual([]);
    }
    expect(await ok('search')).toEqual(expect.arrayContaining(['titi/rocketchat']));
  });

  describe('push', () => {
    it('defaults the media type to kpm and keeps metadata', async () => {
      const blob = await makePackage('defaults');
      await pushOk('push/defaults', blob, '1.0.0');
      const metadata = { author: 'me', tags: ['a', 'b'], nested: { n: 1, ok: true, none: null } };
      await pushOk('push/defaults', blob, '1.1.0', undefined, { metadata });
      const views = (await ok('push/defaults/1.0.0')) as Record<string, unknown>[];
      expect(views).toHaveLength(1);
      expect(views[0]).toMatchObject({ mediaType: 'application/vnd.cnr.package-manifest.kpm.v0.json', metadata: null, release: '1.0.0', package: 'push/defaults' });
      expect(views[0]!.content).toEqual({ digest: cnrDigest(blob), mediaType: 'application/vnd.cnr.package.kpm.v0.tar+gzip', size: blob.length, urls: [] });
      expect(await ok('push/defaults/1.1.0/kpm')).toMatchObject({ metadata, release: '1.1.0' });
    });

    it('refuses an existing (release, media type) with 409 package-exists, and takes another media type', async () => {
      const first = await makePackage('exists', 'first');
      await pushOk('push/exists', first, '1.0.0', 'kpm');
      expectError(await push('push/exists', await makePackage('exists', 'second'), '1.0.0', 'kpm'), 409, 'package-exists');
      expectError(await push('push/exists', await makePackage('exists', 'second'), '1.0.0'), 409, 'package-exists');
      expect(((await ok('push/exists/1.0.0/kpm')) as { content: { digest: string } }).content.digest).toBe(cnrDigest(first));
      await pushOk('push/exists', await makeChart('exists', '1.0.0'), '1.0.0', 'helm');
      expect(((await ok('push/exists/1.0.0')) as { mediaType: string }[]).map((v) => v.mediaType)).toEqual([
        'application/vnd.cnr.package-manifest.kpm.v0.json',
        'application/vnd.cnr.package-manifest.helm.v0.json',
      ]);
    });

    it('overwrites with force "true", JSON true, or ?force=true', async () => {
      await pushOk('push/force', await makePackage('force', 'v0'), '1.0.0');
      const digest = async () => ((await ok('push/force/1.0.0/kpm')) as { content: { digest: string } }).content.digest;
      const cases: [string, Record<string, unknown>, string][] = [
        ['v1', { force: 'true' }, ''],
        ['v2', { force: true }, ''],
        ['v3', {}, '?force=true'],
      ];
      for (const [seed, extra, query] of cases) {
        const blob = await makePackage('force', seed);
        const res = await push('push/force', blob, '1.0.0', 'kpm', extra, query);
        expect(res.status, `${seed}: ${res.body.toString()}`).toBe(200);
        expect(res.json).toEqual({ status: 'ok' });
        expect(await digest()).toBe(cnrDigest(blob));
        const pulled = await call(`${api}/push/force/1.0.0/kpm/pull`);
        expect(pulled.body.equals(blob)).toBe(true);
      }
      expectError(await push('push/force', await makePackage('force', 'v4'), '1.0.0', 'kpm', { force: false }), 409, 'package-exists');
      expect((await ok('push/force')) as unknown[]).toHaveLength(1);
    });

    it('keeps build metadata in a release', async () => {
      const blob = await makePackage('build');
      await pushOk('push/build', blob, '1.0.0+build.7');
      expect(await ok(`push/build/${encodeURIComponent('1.0.0+build.7')}/kpm`)).toMatchObject({ release: '1.0.0+build.7' });
      expect(((await ok('')) as { name: string; releases: string[] }[]).find((e) => e.name === 'push/build')?.releases).toEqual(['1.0.0+build.7']);
    });
  });

  it('serialises concurrent writes to one package', async () => {
    const types = ['kpm', 'helm', 'docker-compose', 'ksonnet', 'blob'];
    const blobs = await Promise.all(types.map((t) => makePackage('many', t)));
    const answers = await Promise.all(types.map((t, i) => push('conc/many', blobs[i]!, '1.0.0', t)));
    expect(answers.map((a) => a.status)).toEqual(types.map(() => 200));
    const views = (await ok('conc/many/1.0.0')) as { mediaType: string; content: { digest: string } }[];
    expect(views.map((v) => v.mediaType).sort()).toEqual(types.map((t) => `application/vnd.cnr.package-manifest.${t}.v0.json`).sort());
    for (const [i, t] of types.entries()) expect(((await ok(`conc/many/1.0.0/${t}`)) as { content: { digest: string } }).content.digest).toBe(cnrDigest(blobs[i]!));
    const releases = ['1.1.0', '1.2.0', '1.3.0', '1.4.0'];
    await Promise.all(releases.map((r, i) => pushOk('conc/many', blobs[i]!, r)));
    await Promise.all(releases.map((r) => ok(`conc/many/channels/all/${r}`, { method: 'POST' })));
    const channel = (await ok('conc/many/channels/all')) as { releases: string[] };
    expect(channel.releases).toEqual([...releases].reverse());
  });

  describe('show', () => {
    it('shows every release, or one media type of them', async () => {
      const helm = (await ok('titi/rocketchat?media_type=helm')) as Record<string, unknown>[];
      expect(withoutCreatedAt(helm)).toEqual([
        {
          content: { digest: cnrDigest(ROCKETCHAT.helm001), mediaType: 'application/vnd.cnr.package.helm.v0.tar+gzip', size: ROCKETCHAT.helm001.length, urls: [] },
          mediaType: 'application/vnd.cnr.package-manifest.helm.v0.json',
          metadata: null,
          package: 'titi/rocketchat',
          release: '0.0.1',
        },
      ]);
      expect(((await ok('titi/rocketchat?media_type=kpm')) as { release: string }[]).map((v) => v.release)).toEqual(['0.0.1', '1.0.1', '2.0.1']);
    });

    it('shows one release with its media types', async () => {
      const views = (await ok('titi/rocketchat/0.0.1')) as Record<string, unknown>[];
      expect(views.map((v) => v.mediaType)).toEqual(['application/vnd.cnr.package-manifest.kpm.v0.json', 'application/vnd.cnr.package-manifest.helm.v0.json']);
      expect(views.map((v) => (v.content as { digest: string }).digest)).toEqual([cnrDigest(ROCKETCHAT.kpm001), cnrDigest(ROCKETCHAT.helm001)]);
      expect(((await ok('titi/rocketchat/2.0.1')) as unknown[]).length).toBe(1);
    });

    it('shows one (release, media type) with the channels whose current it is', async () => {
      const view = (await ok('titi/rocketchat/2.0.1/kpm')) as Record<string, unknown>;
      expect(Object.keys(view).sort()).toEqual([...VIEW_KEYS, 'channels'].sort());
      expect(view).toMatchObject({ release: '2.0.1', package: 'titi/rocketchat', channels: ['stable'], metadata: null });
      expect((view.content as { digest: string }).digest).toBe('cba6371bf66e762ac2f26b670a0f792b3f49e8739d50d7cdaca70645cc102553');
      // 1.0.1 is in stable too, but stable's current is 2.0.1.
      expect(((await ok('titi/rocketchat/1.0.1/kpm')) as { channels: string[] }).channels).toEqual(['dev']);
      expect(((await ok('titi/rocketchat/0.0.1/kpm')) as { channels: string[] }).channels).toEqual([]);
      expect(((await ok('titi/rocketchat/0.0.1/helm')) as { channels: string[] }).channels).toEqual([]);
    });
  });

  describe('release queries', () => {
    it('selects the highest matching release', async () => {
      const cases: [string, string][] = [
        ['default', '2.0.1'],
        ['2.0.1', '2.0.1'],
        ['1.0.1', '1.0.1'],
        ['0.0.1', '0.0.1'],
        ['>1.0.0', '2.0.1'],
        ['>=0.0.1,<2.0.0', '1.0.1'],
        ['<1.0.1', '0.0.1'],
        ['<=1.0.1', '1.0.1'],
      ];
      for (const [query, release] of cases) {
        expect(await ok(`titi/rocketchat/${encodeURIComponent(query)}/kpm`), query).toMatchObject({ release });
        expect(((await ok(`titi/rocketchat/${encodeURIComponent(query)}`)) as { release: string }[]).map((v) => v.release), query).toContain(release);
        const pulled = await call(`${api}/titi/rocketchat/${encodeURIComponent(query)}/kpm/pull`);
        expect(pulled.status).toBe(200);
        expect(cnrDigest(pulled.body), query).toBe(((await ok(`titi/rocketchat/${release}/kpm`)) as { content: { digest: string } }).content.digest);
      }
      expectError(await get(`titi/rocketchat/${encodeURIComponent('>5.0.0')}/kpm`), 404, 'package-release-not-found');
      expectError(await get('titi/rocketchat/3.0.0'), 404, 'package-release-not-found');
      expectError(await get('titi/rocketchat/3.0.0/kpm'), 404, 'package-release-not-found');
    });

    it('matches a prerelease only when the range names one', async () => {
      await pushOk('pre/app', await makePackage('app', 'stable'), '2.0.1');
      await pushOk('pre/app', await makePackage('app', 'beta'), '3.0.0-beta.1');
      const release = async (query: string) => ((await ok(`pre/app/${encodeURIComponent(query)}/kpm`)) as { release: string }).release;
      expect(await release('default')).toBe('3.0.0-beta.1');
      expect(await release('>2.0.0')).toBe('2.0.1');
      expect(await release('>=3.0.0-alpha')).toBe('3.0.0-beta.1');
      expect(await release('3.0.0-beta.1')).toBe('3.0.0-beta.1');
      expectError(await get(`pre/app/${encodeURIComponent('>=3.0.0')}/kpm`), 404, 'package-release-not-found');
      expect(((await ok('')) as { name: string; default: string }[]).find((e) => e.name === 'pre/app')?.default).toBe('3.0.0-beta.1');
    });

    it('answers 422 invalid-release for what is neither SemVer, default nor a range', async () => {
      for (const query of ['1.0', '1', 'abc', 'latest', 'v1.0.1', '>=abc']) {
        expectError(await get(`titi/rocketchat/${encodeURIComponent(query)}/kpm`), 422, 'invalid-release');
        expectError(await get(`titi/rocketchat/${encodeURIComponent(query)}`), 422, 'invalid-release');
        expectError(await call(`${api}/titi/rocketchat/${encodeURIComponent(query)}/kpm/pull`), 422, 'invalid-release');
      }
    });
  });

  it('takes media types short, full, or "-" for the only one', async () => {
    const short = await ok('titi/rocketchat/0.0.1/helm');
    expect(await ok(`titi/rocketchat/0.0.1/${encodeURIComponent('application/vnd.cnr.package-manifest.helm.v0.json')}`)).toEqual(short);
    expect(await ok('titi/rocketchat/1.0.1/-')).toEqual(await ok('titi/rocketchat/1.0.1/kpm'));
    const onlyPull = await call(`${api}/titi/rocketchat/1.0.1/-/pull`);
    expect(onlyPull.body.equals(ROCKETCHAT.kpm101)).toBe(true);
    expectError(await get('titi/rocketchat/0.0.1/-'), 400, 'invalid-usage');
    expectError(await call(`${api}/titi/rocketchat/0.0.1/-/pull`), 400, 'invalid-usage');
    expectError(await get('titi/rocketchat/1.0.1/helm'), 404, 'package-release-not-found');
    expectError(await get('titi/rocketchat/1.0.1/docker-compose'), 404, 'package-release-not-found');
  });

  describe('pull', () => {
    const fixture: [string, string, keyof typeof ROCKETCHAT][] = [
      ['0.0.1', 'kpm', 'kpm001'],
      ['0.0.1', 'helm', 'helm001'],
      ['1.0.1', 'kpm', 'kpm101'],
      ['2.0.1', 'kpm', 'kpm201'],
    ];

    it('pulls the gzip bytes as pushed, with a file name', async () => {
      for (const [release, mediaType, key] of fixture) {
        const res = await call(`${api}/titi/rocketchat/${release}/${mediaType}/pull`);
        expect(res.status).toBe(200);
        expect(res.headers['content-type']).toBe('application/x-gzip');
        expect(String(res.headers['content-disposition'])).toContain(`titi_rocketchat_${cnrDigest(ROCKETCHAT[key]).slice(0, 8)}.tar.gz`);
        expect(res.body.equals(ROCKETCHAT[key]), `${release} ${mediaType}`).toBe(true);
      }
      const res = await call(`${api}/titi/rocketchat/0.0.1/kpm/pull`);
      expect(res.headers['content-disposition']).toMatch(/filename="?titi_rocketchat_a4cdc549\.tar\.gz"?$/);
      expect(Number(res.headers['content-length'])).toBe(ROCKETCHAT.kpm001.length);
    });

    it('pulls as JSON with format=json and /pull/json', async () => {
      for (const [release, mediaType, key] of fixture) {
        for (const path of [`titi/rocketchat/${release}/${mediaType}/pull?format=json`, `titi/rocketchat/${release}/${mediaType}/pull/json`]) {
          const body = (await ok(path)) as Record<string, unknown>;
          expect(Object.keys(body).sort()).toEqual(['blob', 'filename', 'media_type', 'package', 'release']);
          expect(body).toMatchObject({ package: 'titi/rocketchat', release, media_type: mediaType, filename: `titi_rocketchat_${cnrDigest(ROCKETCHAT[key]).slice(0, 8)}.tar.gz` });
          expect(Buffer.from(body.blob as string, 'base64').equals(ROCKETCHAT[key])).toBe(true);
        }
      }
    });

    it('serves blobs by CNR digest (of the gunzipped tar, not the gzip bytes)', async () => {
      const blob = ROCKETCHAT.helm001;
      const hex = cnrDigest(blob);
      expect(hex).toBe('feab055f5caa2f17adbceee75c9c2e40f53f8049df1ed821168922b5e93153bf');
      expect(hex).not.toBe(sha256(blob));
      const res = await call(`${api}/titi/rocketchat/blobs/sha256/${hex}`);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/x-gzip');
      expect(res.body.equals(blob)).toBe(true);
      const json = (await ok(`titi/rocketchat/blobs/sha256/${hex}?format=json`)) as Record<string, unknown>;
      expect(Object.keys(json).sort()).toEqual(['blob', 'filename', 'package', 'release']);
      expect(json).toMatchObject({ package: 'titi/rocketchat', release: hex, filename: `titi_rocketchat_${hex.slice(0, 8)}.tar.gz` });
      expect(Buffer.from(json.blob as string, 'base64').equals(blob)).toBe(true);
      // The OCI digest of the gzip bytes is not a CNR digest.
      expectError(await get(`titi/rocketchat/blobs/sha256/${sha256(blob)}`), 404, 'package-release-not-found');
      // A blob of another package is not this package's.
      expect((await get(`lists/chart/blobs/sha256/${hex}`)).status).toBe(404);
      expectError(await get('titi/rocketchat/blobs/sha256/xyz'), 422, 'invalid-parameters');
      expectError(await get(`titi/rocketchat/blobs/sha256/${hex.toUpperCase()}`), 422, 'invalid-parameters');
      expectError(await get(`nobody/nothing/blobs/sha256/${hex}`), 404, 'package-not-found');
    });
  });

  it('deletes a release media type, and the package with its last release', async () => {
    await pushOk('del/app', await makePackage('app', '1k'), '1.0.0', 'kpm');
    await pushOk('del/app', await makeChart('app', '1.0.0'), '1.0.0', 'helm');
    await pushOk('del/app', await makePackage('app', '2k'), '2.0.0', 'kpm');
    expect(await ok('del/app/1.0.0/helm', { method: 'DELETE' })).toEqual({ status: 'deleted', package: 'del/app', release: '1.0.0' });
    expect(((await ok('del/app/1.0.0')) as { mediaType: string }[]).map((v) => v.mediaType)).toEqual(['application/vnd.cnr.package-manifest.kpm.v0.json']);
    expectError(await get('del/app/1.0.0/helm'), 404, 'package-release-not-found');
    expectError(await del('del/app/1.0.0/helm'), 404, 'package-release-not-found');
    expectError(await del('del/app/3.0.0/kpm'), 404, 'package-release-not-found');
    // A release query in a delete: `default` is 2.0.0.
    expect(await ok('del/app/default/kpm', { method: 'DELETE' })).toEqual({ status: 'deleted', package: 'del/app', release: '2.0.0' });
    expect(((await ok('')) as { name: string; releases: string[] }[]).find((e) => e.name === 'del/app')?.releases).toEqual(['1.0.0']);
    expect(await ok('del/app/1.0.0/kpm', { method: 'DELETE' })).toEqual({ status: 'deleted', package: 'del/app', release: '1.0.0' });
    expectError(await get('del/app'), 404, 'package-not-found');
    expectError(await get('del/app/1.0.0'), 404, 'package-not-found');
    expectError(await get('del/app/channels'), 404, 'package-not-found');
    // Writes to it say the same, on both stores (the layout keeps the emptied directory).
    expectError(await del('del/app/1.0.0/kpm'), 404, 'package-not-found');
    expectError(await post('del/app/channels/dev/1.0.0'), 404, 'package-not-found');
    expectError(await del('del/app/channels/dev'), 404, 'package-not-found');
    expectError(await del('del/app/channels/dev/1.0.0'), 404, 'package-not-found');
    expect(((await ok('')) as { name: string }[]).map((e) => e.name)).not.toContain('del/app');
    // The package can start again.
    await pushOk('del/app', await makePackage('app', 'again'), '0.1.0');
    expect(((await ok('del/app')) as { release: string }[]).map((v) => v.release)).toEqual(['0.1.0']);
  });

  describe('channels', () => {
    beforeAll(async () => {
      for (const release of ['1.0.0', '1.1.0', '2.0.0', '3.0.0']) await pushOk('chan/app', await makePackage('app', release), release);
    });

    it('lists and shows the fixture channels', async () => {
      expect(await ok('titi/rocketchat/channels')).toEqual([
        { name: 'dev', current: '1.0.1', releases: ['1.0.1'] },
        { name: 'stable', current: '2.0.1', releases: ['2.0.1', '1.0.1'] },
      ]);
      expect(await ok('titi/rocketchat/channels/stable')).toEqual({ name: 'stable', current: '2.0.1', releases: ['2.0.1', '1.0.1'] });
      expect(await ok('titi/rocketchat/channels/dev')).toEqual({ name: 'dev', current: '1.0.1', releases: ['1.0.1'] });
    });

    it('adds releases, making each the current one', async () => {
      expect(await ok('chan/app/channels/beta/1.0.0', { method: 'POST' })).toEqual({ name: 'beta', current: '1.0.0', releases: ['1.0.0'] });
      expect(await ok('chan/app/channels/beta/2.0.0', { method: 'POST' })).toEqual({ name: 'beta', current: '2.0.0', releases: ['2.0.0', '1.0.0'] });
      expect(await ok('chan/app/channels/beta/1.1.0', { method: 'POST' })).toEqual({ name: 'beta', current: '1.1.0', releases: ['2.0.0', '1.1.0', '1.0.0'] });
      // Adding a member again makes it current, without a duplicate.
      expect(await ok('chan/app/channels/beta/2.0.0', { method: 'POST' })).toEqual({ name: 'beta', current: '2.0.0', releases: ['2.0.0', '1.1.0', '1.0.0'] });
      expect(await ok('chan/app/channels/beta/1.1.0', { method: 'POST' })).toEqual({ name: 'beta', current: '1.1.0', releases: ['2.0.0', '1.1.0', '1.0.0'] });
      expect(await ok('chan/app/channels/beta')).toEqual({ name: 'beta', current: '1.1.0', releases: ['2.0.0', '1.1.0', '1.0.0'] });
      expect(((await ok('chan/app/1.1.0/kpm')) as { channels: string[] }).channels).toEqual(['beta']);
      expect(((await ok('chan/app/2.0.0/kpm')) as { channels: string[] }).channels).toEqual([]);
    });

    it('removes releases: current moves to the highest remaining, the channel goes with its last', async () => {
      expect(await ok('chan/app/channels/beta/1.1.0', { method: 'DELETE' })).toEqual({ status: 'deleted', package: 'chan/app', name: 'beta', release: '1.1.0' });
      expect(await ok('chan/app/channels/beta')).toEqual({ name: 'beta', current: '2.0.0', releases: ['2.0.0', '1.0.0'] });
      // Removing a member that is not current keeps current.
      expect(await ok('chan/app/channels/beta/1.0.0', { method: 'DELETE' })).toEqual({ status: 'deleted', package: 'chan/app', name: 'beta', release: '1.0.0' });
      expect(await ok('chan/app/channels/beta')).toEqual({ name: 'beta', current: '2.0.0', releases: ['2.0.0'] });
      expectError(await del('chan/app/channels/beta/1.0.0'), 404, 'package-release-not-found');
      expect(await ok('chan/app/channels/beta/2.0.0', { method: 'DELETE' })).toEqual({ status: 'deleted', package: 'chan/app', name: 'beta', release: '2.0.0' });
      expectError(await get('chan/app/channels/beta'), 404, 'channel-not-found');
      expect(await ok('chan/app/channels')).toEqual([]);
    });

    it('deletes a channel', async () => {
      await ok('chan/app/channels/gone/1.0.0', { method: 'POST' });
      await ok('chan/app/channels/gone/2.0.0', { method: 'POST' });
      expect(await ok('chan/app/channels/gone', { method: 'DELETE' })).toEqual({ channel: 'gone', package: 'chan/app', action: 'delete' });
      expectError(await get('chan/app/channels/gone'), 404, 'channel-not-found');
      expectError(await del('chan/app/channels/gone'), 404, 'channel-not-found');
      expect(await ok('chan/app/channels')).toEqual([]);
      // The releases are untouched.
      expect(((await ok('chan/app')) as unknown[]).length).toBe(4);
    });

    it('drops a deleted release from its channels', async () => {
      await ok('chan/app/channels/keep/1.0.0', { method: 'POST' });
      await ok('chan/app/channels/keep/3.0.0', { method: 'POST' });
      await ok('chan/app/channels/only/3.0.0', { method: 'POST' });
      await ok('chan/app/channels/other/1.1.0', { method: 'POST' });
      expect((await del('chan/app/3.0.0/kpm')).status).toBe(200);
      expect(await ok('chan/app/channels')).toEqual([
        { name: 'keep', current: '1.0.0', releases: ['1.0.0'] },
        { name: 'other', current: '1.1.0', releases: ['1.1.0'] },
      ]);
      expectError(await get('chan/app/channels/only'), 404, 'channel-not-found');
      expect(((await ok('chan/app/1.0.0/kpm')) as { channels: string[] }).channels).toEqual(['keep']);
      // A new 3.0.0 is in no channel.
      await pushOk('chan/app', await makePackage('app', '3.0.0 again'), '3.0.0');
      expect(((await ok('chan/app/3.0.0/kpm')) as { channels: string[] }).channels).toEqual([]);
      expectError(await get('chan/app/channels/only'), 404, 'channel-not-found');
      expect(await ok('chan/app/channels/keep')).toEqual({ name: 'keep', current: '1.0.0', releases: ['1.0.0'] });
    });

    it('answers 404 with the slug of what is missing', async () => {
      expectError(await get('chan/app/channels/nope'), 404, 'channel-not-found');
      expectError(await del('chan/app/channels/nope'), 404, 'channel-not-found');
      expectError(await del('chan/app/channels/nope/1.0.0'), 404, 'channel-not-found');
      expectError(await post('chan/app/channels/dev/9.9.9'), 404, 'package-release-not-found');
      expectError(await post('chan/app/channels/dev/latest'), 422, 'invalid-release');
      expectError(await del('chan/app/channels/keep/2.0.0'), 404, 'package-release-not-found');
      expectError(await get('nobody/nothing/channels'), 404, 'package-not-found');
      expectError(await get('nobody/nothing/channels/dev'), 404, 'package-not-found');
      expectError(await post('nobody/nothing/channels/dev/1.0.0'), 404, 'package-not-found');
      expectError(await del('nobody/nothing/channels/dev'), 404, 'package-not-found');
    });
  });

  it('answers 404 package-not-found for a package that does not exist', async () => {
    for (const path of ['nobody/nothing', 'nobody/nothing/1.0.0', 'nobody/nothing/default/kpm', 'nobody/nothing/1.0.0/kpm/pull', 'nobody/nothing/channels']) {
      expectError(await get(path), 404, 'package-not-found');
    }
    expectError(await del('nobody/nothing/1.0.0/kpm'), 404, 'package-not-found');
  });

  it('serves the same API under /api/v1 and /cnr/api/v1', async () => {
    const paths = [
      '',
      '?namespace=titi',
      '/search?q=rocket',
      '/titi/rocketchat',
      '/titi/rocketchat/0.0.1',
      '/titi/rocketchat/2.0.1/kpm',
      '/titi/rocketchat/default/kpm/pull',
      '/titi/rocketchat/0.0.1/helm/pull/json',
      `/titi/rocketchat/blobs/sha256/${cnrDigest(ROCKETCHAT.kpm001)}`,
      '/titi/rocketchat/channels',
      '/titi/rocketchat/channels/stable',
      '/titi/rocketchat/9.9.9',
      '/nobody/nothing',
    ];
    for (const path of paths) {
      const plain = await call(`${server.url}/api/v1/packages${path}`);
      const prefixed = await call(`${server.url}/cnr/api/v1/packages${path}`);
      expect(prefixed.status, path).toBe(plain.status);
      expect(prefixed.headers['content-type'], path).toBe(plain.headers['content-type']);
      expect(prefixed.body.equals(plain.body), path).toBe(true);
    }
    const cnr = `${server.url}/cnr/api/v1/packages`;
    const blob = await makePackage('prefixed');
    expect((await call(`${cnr}/prefix/app`, { method: 'POST', body: pushBody(blob, '1.0.0') })).json).toEqual({ status: 'ok' });
    expect((await call(`${cnr}/prefix/app/channels/c/1.0.0`, { method: 'POST' })).json).toEqual({ name: 'c', current: '1.0.0', releases: ['1.0.0'] });
    expect((await call(`${api}/prefix/app/1.0.0/kpm`)).json).toMatchObject({ channels: ['c'] });
    expect((await call(`${cnr}/prefix/app/channels/c`, { method: 'DELETE' })).json).toEqual({ channel: 'c', package: 'prefix/app', action: 'delete' });
    expect((await call(`${cnr}/prefix/app/1.0.0/kpm`, { method: 'DELETE' })).json).toEqual({ status: 'deleted', package: 'prefix/app', release: '1.0.0' });
    expect((await call(`${api}/prefix/app`)).status).toBe(404);
  });

  it("runs the cnr-server README's curl demo", async () => {
    const text = referenceBlobText('myname/elasticsearch', DEMO_HEX);
    const body = `{"blob": "${text}", "release": "2.2.1", "media_type": "helm"}`;
    const pushed = await run('/usr/bin/curl', ['-sS', '-X', 'POST', `${api}/myname/elasticsearch`, '-d', body]);
    expect(JSON.parse(pushed.stdout)).toEqual({ status: 'ok' });
    const shown = JSON.parse((await run('/usr/bin/curl', ['-sS', `${api}/myname/elasticsearch/2.2.1/helm`])).stdout) as Record<string, unknown>;
    expect(shown).toMatchObject({
      content: { digest: DEMO_HEX, mediaType: 'application/vnd.cnr.package.helm.v0.tar+gzip', size: 583, urls: [] },
      mediaType: 'application/vnd.cnr.package-manifest.helm.v0.json',
      metadata: null,
      package: 'myname/elasticsearch',
      release: '2.2.1',
      channels: [],
    });
    expect(withoutCreatedAt([shown])).toEqual(withoutCreatedAt(answers['myname/elasticsearch']!.all.map((v) => ({ ...v, channels: [] }))));
    const blob = await run('/usr/bin/curl', ['-sS', '-f', `${api}/myname/elasticsearch/blobs/sha256/${DEMO_HEX}`], { encoding: 'buffer' });
    expect(blob.stdout.length).toBe(583);
    expect(blob.stdout.equals(Buffer.from(text, 'base64'))).toBe(true);
    const pulled = await run('/usr/bin/curl', ['-sS', '-f', '-D', '-', '-o', '/dev/null', `${api}/myname/elasticsearch/2.2.1/helm/pull`]);
    expect(pulled.stdout).toMatch(/content-disposition: .*myname_elasticsearch_72ed15c9\.tar\.gz/i);
  });

  it("stores a chart pushed as helm in Helm's OCI shape at the plain tag", async () => {
    const chart = await makeChart('demo', '1.2.3');
    await pushOk('charts/demo', chart, '1.2.3', 'helm');
    const { json: manifest } = await ociManifest('charts/demo', '1.2.3');
    const config = manifest.config as { mediaType: string; digest: string };
    const layers = manifest.layers as { mediaType: string; digest: string; size: number }[];
    expect(config.mediaType).toBe('application/vnd.cncf.helm.config.v1+json');
    const chartConfig = JSON.parse((await ociBlob('charts/demo', config.digest)).toString()) as Record<string, unknown>;
    expect(chartConfig).toMatchObject({ name: 'demo', version: '1.2.3' });
    expect(layers).toHaveLength(1);
    expect(layers[0]!.mediaType).toBe('application/vnd.cncf.helm.chart.content.v1.tar+gzip');
    expect(layers[0]!.size).toBe(chart.length);
    expect((await ociBlob('charts/demo', layers[0]!.digest)).equals(chart)).toBe(true);
    const annotations = manifest.annotations as Record<string, string>;
    expect(annotations['org.opencontainers.image.title']).toBe('demo');
    expect(annotations['org.opencontainers.image.version']).toBe('1.2.3');
    expect(annotations['org.opencontainers.image.created']).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    // The release's own tag is an index holding that manifest.
    const index = (await ociManifest('charts/demo', 'release-1.2.3')).json as { mediaType: string; manifests: { digest: string }[] };
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m) => m.digest)).toEqual([(await ociManifest('charts/demo', '1.2.3')).digest]);
    // A forced push of another chart moves Helm's tag to it; deleting the chart moves it to the index.
    const chart2 = await makeChart('demo', '1.2.3', { 'templates/extra.yaml': 'kind: Secret\n' });
    await pushOk('charts/demo', await makePackage('demo', 'kpm'), '1.2.3', 'kpm');
    await pushOk('charts/demo', chart2, '1.2.3', 'helm', { force: true });
    const moved = (await ociManifest('charts/demo', '1.2.3')).json as { layers: { digest: string }[] };
    expect((await ociBlob('charts/demo', moved.layers[0]!.digest)).equals(chart2)).toBe(true);
    expect((await del('charts/demo/1.2.3/helm')).status).toBe(200);
    expect((await ociManifest('charts/demo', '1.2.3')).digest).toBe((await ociManifest('charts/demo', 'release-1.2.3')).digest);
    // A chart whose version is not the release is not Helm's: the plain tag is the release index.
    await pushOk('charts/demo', await makeChart('demo', '9.9.9'), '2.0.0', 'helm');
    expect((await ociManifest('charts/demo', '2.0.0')).digest).toBe((await ociManifest('charts/demo', 'release-2.0.0')).digest);
  });

  if (kind === 'registry') it('is OCI content skopeo reads from the registry', async () => {
    const ref = `docker://${registry!.host}/cnrtest/titi/rocketchat`;
    const inspected = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `${ref}:release-0.0.1`]);
    const index = JSON.parse(inspected.stdout) as { mediaType: string; manifests: { annotations: Record<string, string> }[] };
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m) => m.annotations['vnd.cnr.media-type'])).toEqual(['kpm', 'helm']);
    const dest = join(root, 'skopeo-copy');
    await run('skopeo', ['copy', '--src-tls-verify=false', `${ref}:0.0.1`, `oci:${dest}:0.0.1`]);
    const copied = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(copied.manifests.map((m) => m.digest)).toEqual([(await ociManifest('titi/rocketchat', '0.0.1')).digest]);
    const layer = (await ociManifest('titi/rocketchat', '0.0.1')).json.layers as { digest: string }[];
    expect((await readFile(join(dest, 'blobs', 'sha256', layer[0]!.digest.slice(7)))).equals(ROCKETCHAT.helm001)).toBe(true);
  });

  if (kind === 'layout') it('is an OCI layout umoci lists', async () => {
    const { stdout } = await run('umoci', ['ls', '--layout', join(layoutDir, 'titi', 'rocketchat')]);
    const tags = stdout.split('\n').filter(Boolean).sort();
    expect(tags).toEqual(['0.0.1', '1.0.1', '2.0.1', 'channel-dev', 'channel-stable', 'release-0.0.1', 'release-1.0.1', 'release-2.0.1']);
  });
});
