import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startCnrServer, type Answer, type CnrServer } from '../helpers/cnr-server.js';
import { makePackage, makeTarball, pushBody } from '../helpers/cnr-packages.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/**
 * One request sent exactly as written: the path is not normalised (`..`, `%2e%2e` and `%2F`
 * reach the server as they are, where a URL parser would resolve them first).
 */
function raw(port: number, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const bytes = Buffer.concat(parts);
        let json: unknown;
        try {
          json = JSON.parse(bytes.toString('utf8'));
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: bytes, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A refusal: 4xx (never 500), in the API's JSON envelope (never HTML). */
function expectRefused(res: Answer, what: string, status?: number, code?: string): void {
  const text = res.body.toString();
  expect(res.status, `${what}: ${text}`).toBeGreaterThanOrEqual(400);
  expect(res.status, `${what}: ${text}`).toBeLessThan(500);
  if (status !== undefined) expect(res.status, `${what}: ${text}`).toBe(status);
  expect(String(res.headers['content-type']), what).toMatch(/^application\/json/);
  expect(text, what).not.toMatch(/^\s*</);
  const body = res.json as Record<string, unknown> | undefined;
  expect(body && typeof body === 'object' && !Array.isArray(body), `${what}: ${text}`).toBe(true);
  expect(Object.keys(body!).sort(), what).toEqual(['code', 'details', 'message']);
  expect(typeof body!.code, what).toBe('string');
  expect(typeof body!.message, what).toBe('string');
  expect(typeof body!.details === 'object' && body!.details !== null, what).toBe(true);
  if (code !== undefined) expect(body!.code, what).toBe(code);
}

/** Every path under `dir`, relative to it. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      out.push(relative(dir, join(d, e.name)));
      if (e.isDirectory()) await walk(join(d, e.name));
    }
  };
  await walk(dir);
  return out.sort();
}

const b64 = (bytes: Buffer): string => bytes.toString('base64');
/** Marks names that would appear if a hostile path segment escaped the store. */
const MARK = `cnr-escape-${randomBytes(4).toString('hex')}`;

const STORES = ['layout', 'registry'] as const;

describe.each(STORES)('malformed CNR requests on the %s store', (kind) => {
  let root: string;
  let layoutDir: string;
  let registry: TestRegistry | undefined;
  let server: CnrServer;
  let api: string;
  let good: Buffer;
  let goodDigest: string;
  let caseNumber = 0;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), `cnab-oci-cnr-bad-${kind}-`));
    // The store sits two levels down: a hostile `..` would show as a new entry above it.
    await mkdir(join(root, 'parent'));
    layoutDir = join(root, 'parent', 'store');
    let storage = `oci:${layoutDir}`;
    if (kind === 'registry') {
      registry = await startRegistry();
      storage = `${registry.host}/cnrtest`;
    }
    server = await startCnrServer({ storage, args: ['--max-body', '1KiB', '--max-unpacked', '64KiB'] });
    api = `${server.url}/api/v1/packages`;
    good = await makePackage('existing', 'good');
    const res = await call(`${api}/bad/existing`, { method: 'POST', body: pushBody(good, '1.0.0') });
    expect(res.json).toEqual({ status: 'ok' });
    goodDigest = ((await call(`${api}/bad/existing/1.0.0/kpm`)).json as { content: { digest: string } }).content.digest;
  });

  afterAll(async () => {
    await server?.stop();
    await registry?.stop();
    await rm(root, { recursive: true, force: true });
  });

  /** The package that was there is as it was. */
  const expectExistingUnchanged = async (): Promise<void> => {
    const views = (await call(`${api}/bad/existing`)).json as { release: string; content: { digest: string } }[];
    expect(views.map((v) => [v.release, v.content.digest])).toEqual([['1.0.0', goodDigest]]);
    const pulled = await call(`${api}/bad/existing/1.0.0/kpm/pull`);
    expect(pulled.body.equals(good)).toBe(true);
  };

  /** A refused first push left no package behind, in the API or on disk. */
  const expectNoPackage = async (pkg: string, what: string): Promise<void> => {
    const shown = await call(`${api}/${pkg}`);
    expect(shown.status, what).toBe(404);
    expect((shown.json as { code: string }).code, what).toBe('package-not-found');
    const listed = (await call(api)).json as { name: string }[];
    expect(listed.map((e) => e.name), what).not.toContain(pkg);
    if (kind === 'layout') expect(existsSync(join(layoutDir, ...pkg.split('/'))), `${what}: ${pkg} on disk`).toBe(false);
  };

  /** Push `body` as a new package, then onto the existing one (with force): both refused, nothing stored. */
  const refusePush = async (what: string, body: string | Buffer, status?: number, code?: string): Promise<void> => {
    const pkg = `bad/case-${++caseNumber}`;
    expectRefused(await call(`${api}/${pkg}`, { method: 'POST', body }), `${what} (new package)`, status, code);
    await expectNoPackage(pkg, what);
    expectRefused(await call(`${api}/bad/existing?force=true`, { method: 'POST', body }), `${what} (existing package)`, status, code);
    await expectExistingUnchanged();
  };

  describe('push bodies', () => {
    it('refuses a body that is not JSON, or JSON that is not an object', async () => {
      await refusePush('not JSON', 'this is not json', 400, 'invalid-usage');
      await refusePush('truncated JSON', `{"blob": "${b64(good)}", "release": "1.0.0"`, 400, 'invalid-usage');
      await refusePush('empty body', '', 400, 'invalid-usage');
      for (const body of ['[1, 2, 3]', '"a string"', 'null', '42', 'true', `[${JSON.stringify({ blob: b64(good), release: '1.0.0' })}]`]) {
        await refusePush(`JSON ${body.slice(0, 20)}`, body);
      }
      // Without any body and without a Content-Type.
      expectRefused(await raw(server.port, 'POST', '/api/v1/packages/bad/nobody'), 'no body');
      await expectNoPackage('bad/nobody', 'no body');
    });

    it('refuses missing or mistyped fields', async () => {
      const blob = b64(good);
      const cases: [string, Record<string, unknown>][] = [
        ['missing blob', { release: '1.0.0' }],
        ['missing release', { blob }],
        ['missing both', { media_type: 'kpm' }],
        ['blob a number', { blob: 12345, release: '1.0.0' }],
        ['blob null', { blob: null, release: '1.0.0' }],
        ['release a number', { blob, release: 100 }],
        ['release an object', { blob, release: { major: 1 } }],
        ['media type a number', { blob, release: '1.0.0', media_type: 7 }],
        ['media type not a name', { blob, release: '1.0.0', media_type: 'Not A/Type' }],
        ['media type a path', { blob, release: '1.0.0', media_type: '../../etc' }],
        ['metadata a string', { blob, release: '1.0.0', metadata: 'text' }],
        ['metadata an array', { blob, release: '1.0.0', metadata: [1, 2] }],
        ['force not a flag', { blob, release: '1.0.0', force: 'maybe' }],
      ];
      for (const [what, body] of cases) await refusePush(what, JSON.stringify(body));
      expectRefused(await call(`${api}/bad/existing?force=maybe`, { method: 'POST', body: pushBody(good, '1.0.0') }), '?force=maybe');
      await expectExistingUnchanged();
    });

    it('refuses a blob that is not base64, not gzip, or not a tar', async () => {
      const release = '1.0.0';
      await refusePush('not base64', JSON.stringify({ blob: '!!! not base64 !!!', release }));
      await refusePush('base64 with a bad length', JSON.stringify({ blob: 'abcde', release }));
      await refusePush('empty blob', JSON.stringify({ blob: '', release }));
      await refusePush('base64 of text', pushBody(Buffer.from('hello world, this is not gzip'), release));
      await refusePush('base64 of one byte', pushBody(Buffer.from([0x1f]), release));
      await refusePush('gzip of text', pushBody(gzipSync('hello, this is not a tar archive at all'), release));
      await refusePush('gzip of random bytes', pushBody(gzipSync(randomBytes(300)), release));
      await refusePush('truncated gzip', pushBody(good.subarray(0, Math.floor(good.length / 2)), release));
      await refusePush('gzip with garbage after the header', pushBody(Buffer.concat([good.subarray(0, 10), randomBytes(100)]), release));
      await refusePush('empty tar', pushBody(await makeTarball([]), release));
    });

    it('refuses archives with entries that point outside', async () => {
      const cases: [string, Parameters<typeof makeTarball>[0]][] = [
        ['absolute path', [{ name: '/etc/cnr-evil', content: 'x' }]],
        ['../ path', [{ name: 'pkg/../../cnr-evil', content: 'x' }]],
        ['leading ../', [{ name: '../cnr-evil', content: 'x' }]],
        ['symlink to /etc/passwd', [{ name: 'pkg/manifest.yaml', content: 'x' }, { name: 'pkg/passwd', type: 'symlink', linkname: '/etc/passwd' }]],
        ['symlink up and out', [{ name: 'pkg/up', type: 'symlink', linkname: '../../../../etc/passwd' }]],
        ['hard link out', [{ name: 'pkg/hard', type: 'link', linkname: '../outside' }]],
      ];
      for (const [what, entries] of cases) await refusePush(what, pushBody(await makeTarball(entries), '1.0.0'), 422, 'invalid-parameters');
    });

    it('refuses an archive that unpacks beyond --max-unpacked', async () => {
      const bomb = await makeTarball([{ name: 'pkg/zeros', content: Buffer.alloc(200 * 1024) }]);
      expect(pushBody(bomb, '1.0.0').length).toBeLessThan(1024);
      await refusePush('gzip bomb', pushBody(bomb, '1.0.0'), 422);
    });

    it('answers 422 invalid-release for a release that is not SemVer', async () => {
      for (const release of ['1.0', '1', 'latest', 'abc', 'v1.0.0', '01.0.0', '1.0.0 ', '', 'default', '>=1.0.0', '../../1.0.0']) {
        await refusePush(`release ${JSON.stringify(release)}`, pushBody(good, release), 422, 'invalid-release');
      }
    });

    it('answers 413 for a body over --max-body, however it is sent', async () => {
      const big = pushBody(await makePackage('big', 'x', 1), '1.0.0', 'kpm', { metadata: { pad: 'p'.repeat(2000) } });
      expect(big.length).toBeGreaterThan(1024);
      await refusePush('body over --max-body', big, 413);
      // Chunked, without a Content-Length: the limit holds while reading.
      const chunked = await new Promise<Answer>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/api/v1/packages/bad/chunked', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => {
            const body = Buffer.concat(parts);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: JSON.parse(body.toString()) });
          });
        });
        req.on('error', reject);
        for (let i = 0; i < 8; i++) req.write(big.slice(0, 512));
        req.end();
      });
      expectRefused(chunked, 'chunked body over --max-body', 413);
      await expectNoPackage('bad/chunked', 'chunked');
    });
  });

  describe('hostile names', () => {
    const hostile = [
      'Upper/name',
      'ns/Name',
      '%2e%2e/name',
      '%2E%2E/%2e%2e',
      'ns/%2e%2e',
      'a%2Fb/c',
      `%2e%2e%2F%2e%2e%2F${MARK}/x`,
      `ns/..%2F..%2F..%2F${MARK}`,
      `..%2f..%2f${MARK}/x`,
      '-ns/name',
      'ns/a..b',
      'ns/name%00',
      'n%20s/name',
      'ns/%C3%A9',
      `ns/${'x'.repeat(300)}`,
      'ns/%zz',
      '%zz/name',
      '../..',
      '../../etc/passwd',
      `../../../../${MARK}`,
    ];

    it('refuses names outside the OCI grammar on every route', async () => {
      const blob = pushBody(good, '1.0.0');
      for (const name of hostile) {
        const base = `/api/v1/packages/${name}`;
        const requests: [string, string, string?][] = [
          ['POST', base, blob],
          ['GET', base],
          ['GET', `${base}/1.0.0`],
          ['GET', `${base}/1.0.0/kpm`],
          ['GET', `${base}/1.0.0/kpm/pull`],
          ['DELETE', `${base}/1.0.0/kpm`],
          ['GET', `${base}/channels`],
          ['POST', `${base}/channels/dev/1.0.0`],
          ['DELETE', `${base}/channels/dev`],
          ['GET', `${base}/blobs/sha256/${goodDigest}`],
          ['POST', `/cnr${base}`, blob],
        ];
        for (const [method, path, body] of requests) expectRefused(await raw(server.port, method, path, body), `${method} ${path.slice(0, 80)}`);
      }
    });

    it('refuses hostile channels, releases, media types and digests', async () => {
      const p = '/api/v1/packages/bad/existing';
      const requests: [string, string][] = [
        ['POST', `${p}/channels/..%2F..%2F${MARK}/1.0.0`],
        ['POST', `${p}/channels/%2e%2e/1.0.0`],
        ['POST', `${p}/channels/a%2Fb/1.0.0`],
        ['POST', `${p}/channels/-dash/1.0.0`],
        ['POST', `${p}/channels/dev/..%2F1.0.0`],
        ['DELETE', `${p}/channels/%2e%2e`],
        ['GET', `${p}/%2e%2e/kpm`],
        ['GET', `${p}/1.0.0/..%2F..%2F${MARK}`],
        ['GET', `${p}/1.0.0/%2e%2e/pull`],
        ['DELETE', `${p}/1.0.0/..%2Fkpm`],
        ['GET', `${p}/blobs/sha256/..%2F..%2F${MARK}`],
        ['GET', `${p}/blobs/sha256/${goodDigest.slice(0, 63)}`],
        ['GET', `${p}/blobs/sha256/${goodDigest.toUpperCase()}`],
      ];
      for (const [method, path] of requests) expectRefused(await raw(server.port, method, path), `${method} ${path}`);
      await expectExistingUnchanged();
    });

    it('answers 404 resource-not-found for an unknown route', async () => {
      for (const path of ['/api/v1/nothing', '/nothing', '/api/v2/packages', '/api/v1/packages/a/b/c/d/e/f/g', '/cnr/api/v1/nothing', '/api/v1/packages/bad/existing/1.0.0/kpm/pull/xml', `/api/v1/../../${MARK}`]) {
        expectRefused(await raw(server.port, 'GET', path), path, 404, 'resource-not-found');
      }
    });

    it('answers 405 with Allow for a method a route does not take', async () => {
      const cases: [string, string, string[]][] = [
        ['PUT', '/api/v1/packages/bad/existing', ['GET', 'POST']],
        ['PATCH', '/api/v1/packages/bad/existing', ['GET', 'POST']],
        ['DELETE', '/api/v1/packages', ['GET']],
        ['POST', '/api/v1/packages/search', ['GET']],
        ['POST', '/version', ['GET']],
        ['GET', '/api/v1/users/login', ['POST']],
        ['POST', '/api/v1/packages/bad/existing/1.0.0/kpm', ['GET', 'DELETE']],
        ['DELETE', '/api/v1/packages/bad/existing/1.0.0/kpm/pull', ['GET']],
        ['PUT', '/api/v1/packages/bad/existing/channels/dev', ['GET', 'DELETE']],
        ['GET', '/api/v1/packages/bad/existing/channels/dev/1.0.0', ['POST', 'DELETE']],
        ['PUT', '/cnr/api/v1/packages/bad/existing', ['GET', 'POST']],
      ];
      for (const [method, path, allowed] of cases) {
        const res = await raw(server.port, method, path, method === 'GET' ? undefined : '{}');
        expectRefused(res, `${method} ${path}`, 405);
        const allow = String(res.headers.allow ?? '').split(/,\s*/);
        for (const m of allowed) expect(allow, `${method} ${path}: Allow ${res.headers.allow}`).toContain(m);
        expect(allow, `${method} ${path}`).not.toContain(method);
      }
      await expectExistingUnchanged();
    });

    it('left nothing outside the store, and no package but the good one', async () => {
      expect(await tree(root)).toEqual(kind === 'layout' ? expect.arrayContaining(['parent', 'parent/store']) : ['parent']);
      const outside = (await tree(root)).filter((p) => p !== 'parent' && !p.startsWith('parent/store'));
      expect(outside).toEqual([]);
      expect((await readdir(tmpdir())).filter((n) => n.includes(MARK))).toEqual([]);
      expect((await tree(root)).filter((n) => n.includes(MARK) || n.includes('cnr-evil'))).toEqual([]);
      if (kind === 'layout') {
        expect(await readdir(layoutDir)).toEqual(['bad']);
        expect(await readdir(join(layoutDir, 'bad'))).toEqual(['existing']);
      } else {
        const res = await request(`http://${registry!.host}/v2/_catalog`);
        expect(((await res.body.json()) as { repositories: string[] }).repositories).toEqual(['cnrtest/bad/existing']);
      }
      expect(((await call(api)).json as { name: string }[]).map((e) => e.name)).toEqual(['bad/existing']);
      await expectExistingUnchanged();
      expect(server.child.exitCode).toBeNull();
    });
  });
});
