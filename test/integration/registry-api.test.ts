import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidDigestError, NotFoundError } from '../../src/oci/errors.js';
import { parseReference } from '../../src/oci/reference.js';
import type { Descriptor } from '../../src/oci/schemas.js';
import { RegistryClient } from '../../src/registry/client.js';
import { staticCredentials } from '../../src/registry/credentials.js';
import { AuthError, RegistryError } from '../../src/registry/errors.js';
import type { Repository } from '../../src/registry/repository.js';
import { pushImage } from '../helpers/images.js';
import { startQuirkProxy } from '../helpers/quirk-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startTokenServer } from '../helpers/token-server.js';

/** Push a small image and tag it; returns its descriptor (without the platform pushImage adds). */
async function pushTagged(repo: Repository, ...tags: string[]): Promise<Descriptor> {
  const { platform: _p, ...desc } = await pushImage(repo, { layers: [64] });
  for (const tag of tags) await repo.tag(desc, tag);
  return desc;
}

/** Requests of one method and path (query left out) in a transport's debug lines. */
function sent(lines: string[], method: string, path: string): string[] {
  return lines.filter((l) => l.startsWith(`${method} `) && new URL(l.split(' ')[1]!).pathname === path);
}

interface Front {
  host: string;
  /** `METHOD /path?query` of every request that reached the front. */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * What newer registries do that Debian's registry:2 (distribution 2.8) does not, in front of a
 * real one: tags/list with `n` is paged as distribution 3 pages it (sorted, `last`, and a `Link`
 * whose form is chosen here), or _catalog answers 404 (GHCR, ECR, Docker Hub have none). Every
 * other request, and the tags themselves, come from the registry behind.
 */
async function startFront(upstream: string, options: { tagLinks?: 'path' | 'url' | 'foreign'; noCatalog?: boolean }): Promise<Front> {
  const requests: string[] = [];
  let front = '';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (options.noCatalog && url.pathname === '/v2/_catalog') {
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    const tagsOf = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname)?.[1];
    const n = Number(url.searchParams.get('n'));
    if (options.tagLinks && tagsOf && req.method === 'GET' && n > 0) {
      req.resume();
      void (async () => {
        const all = await fetch(`http://${upstream}${url.pathname}`, { headers: req.headers.authorization ? { authorization: req.headers.authorization } : {} });
        const body = (await all.json()) as { name: string; tags: string[] | null };
        if (!all.ok) return void res.writeHead(all.status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        const last = url.searchParams.get('last');
        const rest = [...(body.tags ?? [])].sort().filter((t) => last === null || t > last);
        const page = rest.slice(0, n);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (rest.length > n) {
          const path = `/v2/${tagsOf}/tags/list?${new URLSearchParams({ last: page[page.length - 1]!, n: String(n) })}`;
          const port = front.slice(front.lastIndexOf(':') + 1);
          const target = { path, url: `http://${front}${path}`, foreign: `http://localhost:${port}${path}` }[options.tagLinks!];
          headers.link = `<${target}>; rel="next"`;
        }
        res.writeHead(200, headers).end(JSON.stringify({ name: body.name, tags: page }));
      })().catch((err: Error) => res.writeHead(502).end(err.message));
      return;
    }
    const up = httpRequest({ host: '127.0.0.1', port: Number(upstream.slice(upstream.lastIndexOf(':') + 1)), method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', (err) => res.writeHead(502).end(err.message));
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  front = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host: front,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('tags, probe and deleteManifest against registry:2', () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  const lines: string[] = [];
  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ debug: (l) => lines.push(l) });
    await pushTagged(client.repository(parseReference(`${registry.host}/acme/app`)), 'a', 'b', 'c', 'd', 'e');
  });
  afterAll(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('lists every tag; distribution 2.8 itself sends them all in one page whatever n says', async () => {
    const repo = client.repository(parseReference(`${registry.host}/acme/app`));
    lines.length = 0;
    expect((await repo.tags({ pageSize: 2 })).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(sent(lines, 'GET', '/v2/acme/app/tags/list')).toHaveLength(1);
    await expect(repo.tags({ pageSize: 0 })).rejects.toThrow(RangeError);
  });

  // The Link forms registries send: distribution 3's absolute path, and a full URL of the same origin.
  for (const style of ['path', 'url'] as const) {
    it(`follows a next-page Link given as ${style === 'path' ? 'an absolute path' : 'a full URL'} (n=2 over 5 tags: 3 pages)`, async () => {
      const front = await startFront(registry.host, { tagLinks: style });
      const pager = new RegistryClient();
      try {
        const repo = pager.repository(parseReference(`${front.host}/acme/app`));
        expect(await repo.tags({ pageSize: 2 })).toEqual(['a', 'b', 'c', 'd', 'e']);
        expect(front.requests.filter((r) => r.includes('/tags/list'))).toEqual([
          'GET /v2/acme/app/tags/list?n=2',
          'GET /v2/acme/app/tags/list?last=b&n=2',
          'GET /v2/acme/app/tags/list?last=d&n=2',
        ]);
      } finally {
        await pager.close();
        await front.stop();
      }
    });
  }

  it('refuses a next-page Link to another origin, and sends nothing there', async () => {
    const front = await startFront(registry.host, { tagLinks: 'foreign' });
    const pager = new RegistryClient();
    try {
      const err = await pager.repository(parseReference(`${front.host}/acme/app`)).tags({ pageSize: 2 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as Error).message).toMatch(/next-page link to another origin \(http:\/\/localhost:\d+\); refused/);
      expect(front.requests.filter((r) => r.includes('/tags/list'))).toHaveLength(1);
    } finally {
      await pager.close();
      await front.stop();
    }
  });

  it('probes a tag or digest with one HEAD; undefined when it does not exist', async () => {
    const repo = client.repository(parseReference(`${registry.host}/acme/probe`));
    const desc = await pushTagged(repo, 'v1');
    lines.length = 0;
    expect(await repo.probe('v1')).toEqual(desc);
    expect(await repo.probe(desc.digest)).toEqual(desc);
    expect(lines.filter((l) => / -> \d+$/.test(l)).map((l) => l.split(' ')[0])).toEqual(['HEAD', 'HEAD']);
    expect(await repo.probe('no-such-tag')).toBeUndefined();
    expect(await client.repository(parseReference(`${registry.host}/acme/never-pushed`)).probe('v1')).toBeUndefined();
  });

  it('asks a registry without the Referrers API once, whichever repositories follow', async () => {
    const repos = await Promise.all(['one', 'two', 'three'].map(async (name) => {
      const repo = client.repository(parseReference(`${registry.host}/referrers/${name}`));
      return { repo, desc: await pushTagged(repo, 'v1') };
    }));
    lines.length = 0;
    for (const { repo, desc } of repos) expect(await repo.referrers(desc.digest)).toBeUndefined();
    // distribution 2.8 has no such route (a plain "404 page not found"): one probe for the registry.
    expect(lines.filter((l) => l.startsWith('GET ') && l.includes('/referrers/sha256:'))).toHaveLength(1);
    // Another client knows nothing of it and asks again.
    const other = new RegistryClient({ debug: (l) => lines.push(l) });
    expect(await other.repository(parseReference(`${registry.host}/referrers/one`)).referrers(repos[0]!.desc.digest)).toBeUndefined();
    expect(lines.filter((l) => l.startsWith('GET ') && l.includes('/referrers/sha256:'))).toHaveLength(2);
    await other.close();
  });

  it('falls back to one GET when the HEAD has no Docker-Content-Digest', async () => {
    const proxy = await startQuirkProxy(registry.host, { digestHeader: 'strip' });
    const own: string[] = [];
    const viaProxy = new RegistryClient({ debug: (l) => own.push(l) });
    try {
      const repo = viaProxy.repository(parseReference(`${proxy.host}/acme/probe`));
      const desc = await client.repository(parseReference(`${registry.host}/acme/probe`)).resolve('v1');
      own.length = 0;
      expect(await repo.probe('v1')).toEqual(desc);
      expect(sent(own, 'HEAD', '/v2/acme/probe/manifests/v1')).toHaveLength(1);
      expect(sent(own, 'GET', '/v2/acme/probe/manifests/v1')).toHaveLength(1);
      expect(await repo.probe('gone')).toBeUndefined();
    } finally {
      await viaProxy.close();
      await proxy.stop();
    }
  });

  // What a caller relies on: deleting a manifest by digest on registry:2 (DELETE -> 202) removes
  // every tag that named it, from tags() and from probe(); a tag of another manifest stays. The
  // repository itself stays in the catalog, with `"tags": null` once its last tag is gone.
  it('deletes a manifest by digest: its tags are gone, other tags stay; a second delete is false', async () => {
    const repo = client.repository(parseReference(`${registry.host}/acme/del`));
    const doomed = await pushTagged(repo, 'one', 'two');
    const kept = await pushTagged(repo, 'keep');
    lines.length = 0;
    expect(await repo.deleteManifest(doomed.digest)).toBe(true);
    expect(sent(lines, 'DELETE', `/v2/acme/del/manifests/${doomed.digest}`).map((l) => l.split(' -> ')[1])).toEqual(['202']);
    expect(await repo.tags()).toEqual(['keep']);
    expect(await repo.probe('one')).toBeUndefined();
    expect(await repo.probe('two')).toBeUndefined();
    expect(await repo.probe(doomed.digest)).toBeUndefined();
    await expect(repo.resolve('one')).rejects.toBeInstanceOf(NotFoundError);
    expect(await repo.probe('keep')).toEqual(kept);

    // Already gone: 404 MANIFEST_UNKNOWN, which is not a failure.
    lines.length = 0;
    expect(await repo.deleteManifest(doomed.digest)).toBe(false);
    expect(sent(lines, 'DELETE', `/v2/acme/del/manifests/${doomed.digest}`).map((l) => l.split(' -> ')[1])).toEqual(['404']);
    expect(await client.repository(parseReference(`${registry.host}/acme/never-pushed`)).deleteManifest(doomed.digest)).toBe(false);

    // The last tag gone: an empty list, and the repository is still listed.
    expect(await repo.deleteManifest(kept.digest)).toBe(true);
    expect(await repo.tags()).toEqual([]);
    expect(await client.catalog(registry.host, { prefix: 'acme/del' })).toEqual(['acme/del']);
  });

  it('deletes by digest only: a tag is refused before anything is sent', async () => {
    const repo = client.repository(parseReference(`${registry.host}/acme/del`));
    lines.length = 0;
    await expect(repo.deleteManifest('keep')).rejects.toBeInstanceOf(InvalidDigestError);
    expect(lines.filter((l) => l.startsWith('DELETE '))).toEqual([]);
  });
});

describe('deleteManifest on a registry:2 without storage.delete.enabled', () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    registry = await startRegistry({ deletes: false });
    client = new RegistryClient();
  });
  afterAll(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('says deletes are switched off (405 UNSUPPORTED, for a missing digest too) and how to switch them on', async () => {
    const repo = client.repository(parseReference(`${registry.host}/acme/app`));
    const desc = await pushTagged(repo, 'v1');
    for (const digest of [desc.digest, `sha256:${'0'.repeat(64)}`]) {
      const err = await repo.deleteManifest(digest).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect(err).not.toBeInstanceOf(AuthError);
      expect((err as RegistryError).status).toBe(405);
      expect((err as RegistryError).codes).toEqual(['UNSUPPORTED']);
      const message = (err as Error).message;
      expect(message).toContain(`${registry.host}/acme/app@${digest}: the registry does not allow deleting manifests`);
      expect(message).toContain('storage.delete.enabled');
      expect(message).toContain('REGISTRY_STORAGE_DELETE_ENABLED=true');
      expect(message).not.toContain('\n');
    }
    expect(await repo.probe('v1')).toEqual(desc);
  });
});

describe('catalog against registry:2', () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  const lines: string[] = [];
  const repositories = ['apps/team', 'apps/team/api', 'apps/team/web', 'apps/teamx', 'tools/fmt', 'tools/lint'];
  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ debug: (l) => lines.push(l) });
  });
  afterAll(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('gives [] for an empty registry', async () => {
    expect(await client.catalog(registry.host)).toEqual([]);
  });

  it('lists every repository across pages of 2, following distribution\'s absolute-path Link', async () => {
    for (const name of repositories) await pushTagged(client.repository(parseReference(`${registry.host}/${name}`)), 'v1');
    lines.length = 0;
    expect(await client.catalog(registry.host, { pageSize: 2 })).toEqual(repositories);
    // 6 repositories, 2 a page: 3 pages, and no empty fourth (distribution looks ahead).
    expect(sent(lines, 'GET', '/v2/_catalog')).toHaveLength(3);
    expect(await client.catalog(registry.host)).toEqual(repositories);
  });

  it('keeps only the repositories at or under a prefix', async () => {
    expect(await client.catalog(registry.host, { prefix: 'apps/team', pageSize: 2 })).toEqual(['apps/team', 'apps/team/api', 'apps/team/web']);
    expect(await client.catalog(registry.host, { prefix: 'apps/team/' })).toEqual(['apps/team', 'apps/team/api', 'apps/team/web']);
    expect(await client.catalog(registry.host, { prefix: 'tools' })).toEqual(['tools/fmt', 'tools/lint']);
    expect(await client.catalog(registry.host, { prefix: 'tool' })).toEqual([]);
  });

  it('says so when a registry answers 404 to _catalog', async () => {
    const front = await startFront(registry.host, { noCatalog: true });
    const other = new RegistryClient();
    try {
      const err = await other.catalog(front.host).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).status).toBe(404);
      expect((err as Error).message).toMatch(new RegExp(`^${front.host}: the registry does not offer the catalog API \\(GET /v2/_catalog: HTTP 404`));
    } finally {
      await other.close();
      await front.stop();
    }
  });
});

describe('catalog with credentials', () => {
  it('lists an htpasswd registry with its credentials; without them, says the catalog is not offered', async () => {
    const registry = await startRegistry({ htpasswd: { alice: 'catalog-pw-never-printed' } });
    const alice = new RegistryClient({ credentials: staticCredentials({ [registry.host]: { username: 'alice', password: 'catalog-pw-never-printed' } }) });
    const anonymous = new RegistryClient();
    try {
      for (const name of ['team/a', 'team/b', 'team/c']) await pushTagged(alice.repository(parseReference(`${registry.host}/${name}`)), 'v1');
      expect(await alice.catalog(registry.host, { pageSize: 2 })).toEqual(['team/a', 'team/b', 'team/c']);
      expect(await alice.catalog(registry.host, { prefix: 'team', pageSize: 1 })).toEqual(['team/a', 'team/b', 'team/c']);
      const err = await anonymous.catalog(registry.host).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).status).toBe(401);
      expect((err as Error).message).toContain(`${registry.host}: the registry does not offer the catalog API to these credentials`);
    } finally {
      await alice.close();
      await anonymous.close();
      await registry.stop();
    }
  });

  it('asks a token service for registry:catalog:*, and says so when the token does not grant it', async () => {
    const tokens = await startTokenServer({ alice: 'token-pw-never-printed' });
    const registry = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundleFile: tokens.certFile } });
    const alice = new RegistryClient({ credentials: staticCredentials({ [registry.host]: { username: 'alice', password: 'token-pw-never-printed' } }) });
    try {
      await pushTagged(alice.repository(parseReference(`${registry.host}/team/a`)), 'v1');
      tokens.requests.length = 0;
      // This token service, like Docker Hub's, grants nothing on the catalog.
      const err = await alice.catalog(registry.host).catch((e: unknown) => e);
      // The token asked for after the registry's catalog challenge is for the catalog alone.
      expect(tokens.requests.at(-1)).toMatchObject({ user: 'alice', scopes: ['registry:catalog:*'], granted: true });
      expect(err).toBeInstanceOf(AuthError);
      const message = (err as Error).message;
      expect(message).toContain(`${registry.host}: the registry does not offer the catalog API to these credentials`);
      expect(message).toContain('registry:catalog:*');
      expect(message).not.toContain('token-pw-never-printed');
      for (const t of tokens.issued) expect(message).not.toContain(t);
    } finally {
      await alice.close();
      await registry.stop();
      await tokens.stop();
    }
  });
});
