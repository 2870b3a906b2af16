import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Authenticator, parseChallenges } from '../../../src/registry/auth.js';
import { staticCredentials, type Credential } from '../../../src/registry/credentials.js';
import { AuthError } from '../../../src/registry/errors.js';
import type { SendOptions, Transport } from '../../../src/registry/transport.js';

describe('parseChallenges (WWW-Authenticate)', () => {
  it('reads a Bearer challenge with realm, service and scope', () => {
    expect(parseChallenges('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:acme/app:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:acme/app:pull' } },
    ]);
  });

  it('keeps commas and spaces inside quoted values (scopes with several actions)', () => {
    const [c] = parseChallenges('Bearer realm="https://a/token",scope="repository:acme/app:pull,push repository:src/x:pull",error="insufficient_scope"');
    expect(c!.params.scope).toBe('repository:acme/app:pull,push repository:src/x:pull');
    expect(c!.params.error).toBe('insufficient_scope');
  });

  it('splits several challenges in one header, and lower-cases schemes and parameter names', () => {
    const all = parseChallenges('Basic realm="Registry Realm", BEARER Realm="https://t/x", Service="s", scope="a:b:pull,push"');
    expect(all).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'https://t/x', service: 's', scope: 'a:b:pull,push' } },
    ]);
  });

  it('reads unquoted token values, spaces around "=", and backslash escapes', () => {
    expect(parseChallenges('Bearer realm = "https://t/\\"q\\"" , service=svc,error=invalid_token')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://t/"q"', service: 'svc', error: 'invalid_token' } },
    ]);
  });

  it('a bare scheme (no parameters) is a challenge of its own', () => {
    expect(parseChallenges('Negotiate, Basic realm="r"')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'r' } },
    ]);
  });

  it('returns nothing for an empty header', () => {
    expect(parseChallenges('')).toEqual([]);
  });
});

interface Sent {
  url: URL;
  opts: SendOptions;
}

/** A transport that answers token requests from a script, recording each one. */
function fakeTransport(origin: string, answer: (req: Sent) => { status: number; body?: unknown }): { transport: Transport; sent: Sent[] } {
  const sent: Sent[] = [];
  const transport = {
    origin: async () => origin,
    log: () => {},
    send: async (url: string, opts: SendOptions) => {
      const req = { url: new URL(url), opts };
      sent.push(req);
      const { status, body } = answer(req);
      const text = body === undefined ? '' : JSON.stringify(body);
      return { statusCode: status, headers: {}, body: Object.assign(Readable.from([text]), { text: async () => text, dump: async () => {} }) };
    },
  } as unknown as Transport;
  return { transport, sent };
}

const CHALLENGE = 'Bearer realm="https://auth.example/token",service="reg"';
const scope = (repo: string, actions = 'pull') => `repository:${repo}:${actions}`;

function issuing(expiresIn?: number): (req: Sent) => { status: number; body: unknown } {
  let n = 0;
  return () => ({ status: 200, body: { token: `t${++n}`, ...(expiresIn === undefined ? {} : { expires_in: expiresIn }) } });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Authenticator token flow', () => {
  it('caches a token per scope set and asks again for a different scope', async () => {
    const { transport, sent } = fakeTransport('https://reg', issuing(300));
    const auth = new Authenticator(staticCredentials({}), transport);
    expect(await auth.challenged('reg', CHALLENGE, [scope('a')], undefined)).toBe('Bearer t1');
    expect(await auth.authorization('reg', [scope('a')])).toBe('Bearer t1');
    expect(await auth.authorization('reg', [scope('b')])).toBe('Bearer t2');
    expect(await auth.authorization('reg', [scope('a')])).toBe('Bearer t1');
    expect(sent).toHaveLength(2);
    expect(sent[0]!.url.searchParams.get('service')).toBe('reg');
    expect(sent[0]!.url.searchParams.getAll('scope')).toEqual([scope('a')]);
  });

  it('a burst of first requests, all answered 401, shares one token fetch', async () => {
    const { transport, sent } = fakeTransport('https://reg', issuing(300));
    const auth = new Authenticator(staticCredentials({}), transport);
    const answers = await Promise.all(Array.from({ length: 8 }, () => auth.challenged('reg', CHALLENGE, [scope('a')], undefined)));
    expect(new Set(answers)).toEqual(new Set(['Bearer t1']));
    expect(sent).toHaveLength(1);
    // A request that had sent an older token gets the current one, without another fetch.
    expect(await auth.challenged('reg', CHALLENGE, [scope('a')], 'Bearer t0')).toBe('Bearer t1');
    expect(sent).toHaveLength(1);
  });

  it('a burst against a token service that refuses the credentials is one request and one error each', async () => {
    const { transport, sent } = fakeTransport('https://reg', () => ({ status: 401, body: { errors: [{ code: 'UNAUTHORIZED' }] } }));
    const auth = new Authenticator(staticCredentials({ reg: { username: 'u', password: 'wrong' } }), transport);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => auth.challenged('reg', CHALLENGE, [scope('a')], undefined)));
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof AuthError)).toBe(true);
    expect(sent).toHaveLength(1);
    // A later request asks again (the failure is not cached).
    await expect(auth.authorization('reg', [scope('a')])).rejects.toThrow(AuthError);
    expect(sent).toHaveLength(2);
  });

  it('expired tokens are renewed once for a burst', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { transport, sent } = fakeTransport('https://reg', issuing(60));
    const auth = new Authenticator(staticCredentials({}), transport);
    await auth.challenged('reg', CHALLENGE, [scope('a')], undefined);
    vi.advanceTimersByTime(120_000);
    const answers = await Promise.all(Array.from({ length: 5 }, () => auth.authorization('reg', [scope('a')])));
    expect(new Set(answers)).toEqual(new Set(['Bearer t2']));
    expect(sent).toHaveLength(2);
  });

  it('asks for every scope of a cross-repository mount in one token', async () => {
    const { transport, sent } = fakeTransport('https://reg', issuing(300));
    const auth = new Authenticator(staticCredentials({}), transport);
    await auth.challenged('reg', CHALLENGE, [scope('dst', 'pull,push'), scope('src')], undefined);
    expect(sent[0]!.url.searchParams.getAll('scope').sort()).toEqual([scope('dst', 'pull,push'), scope('src')]);
  });

  it('renews a token once it expires; expires_in below 60 s counts as 60 s', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { transport, sent } = fakeTransport('https://reg', issuing(5));
    const auth = new Authenticator(staticCredentials({}), transport);
    await auth.challenged('reg', CHALLENGE, [scope('a')], undefined);
    vi.advanceTimersByTime(30_000); // past the 5 s the service claimed, within the 60 s floor
    expect(await auth.authorization('reg', [scope('a')])).toBe('Bearer t1');
    vi.advanceTimersByTime(30_000);
    expect(await auth.authorization('reg', [scope('a')])).toBe('Bearer t2');
    expect(sent).toHaveLength(2);
  });

  it('a 401 for a token it just sent fetches a fresh one, and gives up when the answer is the same', async () => {
    const { transport, sent } = fakeTransport('https://reg', issuing(300));
    const auth = new Authenticator(staticCredentials({}), transport);
    const first = await auth.challenged('reg', CHALLENGE, [scope('a')], undefined);
    const second = await auth.challenged('reg', CHALLENGE, [scope('a')], first);
    expect(second).toBe('Bearer t2');
    expect(sent).toHaveLength(2);
  });

  it('GET with Basic credentials for users, none for anonymous callers', async () => {
    for (const cred of [{ username: 'u', password: 'p' }, undefined] as (Credential | undefined)[]) {
      const { transport, sent } = fakeTransport('https://reg', issuing());
      const auth = new Authenticator(staticCredentials(cred ? { reg: cred } : {}), transport);
      await auth.challenged('reg', CHALLENGE, [scope('a')], undefined);
      expect(sent[0]!.opts.method).toBe('GET');
      expect(sent[0]!.opts.headers?.authorization).toBe(cred ? `Basic ${Buffer.from('u:p').toString('base64')}` : undefined);
      expect(sent[0]!.url.searchParams.get('account')).toBe(cred ? 'u' : null);
    }
  });

  it('an identity token is a refresh-token grant (POST); GET with it as Basic password when POST is not supported', async () => {
    for (const postStatus of [200, 404, 405]) {
      const { transport, sent } = fakeTransport('https://reg', (req) =>
        req.opts.method === 'POST' && postStatus !== 200 ? { status: postStatus } : { status: 200, body: { access_token: 'tok' } });
      const auth = new Authenticator(staticCredentials({ reg: { username: 'u', identityToken: 'refresh-me' } }), transport);
      expect(await auth.challenged('reg', CHALLENGE, [scope('a', 'pull,push')], undefined)).toBe('Bearer tok');
      const form = new URLSearchParams(Buffer.from(sent[0]!.opts.body as Uint8Array).toString());
      expect(sent[0]!.opts.method).toBe('POST');
      expect(form.get('grant_type')).toBe('refresh_token');
      expect(form.get('refresh_token')).toBe('refresh-me');
      expect(form.get('service')).toBe('reg');
      expect(form.get('scope')).toBe(scope('a', 'pull,push'));
      if (postStatus === 200) {
        expect(sent).toHaveLength(1);
      } else {
        expect(sent.map((s) => s.opts.method)).toEqual(['POST', 'GET']);
        expect(sent[1]!.opts.headers?.authorization).toBe(`Basic ${Buffer.from('u:refresh-me').toString('base64')}`);
      }
    }
  });

  it('prefers Bearer when a registry offers Basic too, and answers Basic-only registries with Basic', async () => {
    const { transport, sent } = fakeTransport('https://reg', issuing());
    const auth = new Authenticator(staticCredentials({ reg: { username: 'u', password: 'p' } }), transport);
    expect(await auth.challenged('reg', 'Basic realm="r", Bearer realm="https://auth.example/token",service="reg"', [scope('a')], undefined)).toBe('Bearer t1');
    expect(sent).toHaveLength(1);
    const basicOnly = new Authenticator(staticCredentials({ reg: { username: 'u', password: 'p' } }), transport);
    expect(await basicOnly.challenged('reg', 'Basic realm="r"', [scope('a')], undefined)).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    const anonymous = new Authenticator(staticCredentials({}), transport);
    expect(await anonymous.challenged('reg', 'Basic realm="r"', [scope('a')], undefined)).toBeUndefined();
  });

  it('a registry token from config.json is sent as is, without asking a token service', async () => {
    const { transport, sent } = fakeTransport('https://reg', issuing());
    const auth = new Authenticator(staticCredentials({ reg: { registryToken: 'given' } }), transport);
    expect(await auth.challenged('reg', CHALLENGE, [scope('a')], undefined)).toBe('Bearer given');
    expect(sent).toHaveLength(0);
  });

  it('refuses a plain-HTTP realm for an HTTPS registry without sending anything', async () => {
    const { transport, sent } = fakeTransport('https://reg', issuing());
    const auth = new Authenticator(staticCredentials({ reg: { username: 'u', password: 'p' } }), transport);
    const err = await auth.challenged('reg', 'Bearer realm="http://10.0.0.1/token",service="reg"', [scope('a')], undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(/reg: refusing token realm http:\/\/10\.0\.0\.1.*HTTPS/);
    expect(sent).toHaveLength(0);
  });

  it('allows a plain-HTTP realm for a plain-HTTP (insecure) registry; refuses realms that are not http(s)', async () => {
    const { transport, sent } = fakeTransport('http://reg', issuing());
    const auth = new Authenticator(staticCredentials({}), transport);
    expect(await auth.challenged('reg', 'Bearer realm="http://10.0.0.1/token"', [scope('a')], undefined)).toBe('Bearer t1');
    await expect(auth.challenged('reg', 'Bearer realm="file:///etc/passwd"', [scope('b')], undefined)).rejects.toThrow(/not an http\(s\) URL/);
    expect(sent).toHaveLength(1);
  });

  it('a refused token service is an AuthError naming the registry; the password is not in it', async () => {
    const { transport } = fakeTransport('https://reg', () => ({ status: 401, body: { errors: [{ code: 'UNAUTHORIZED' }] } }));
    const auth = new Authenticator(staticCredentials({ reg: { username: 'u', password: 'sekrit' } }), transport);
    const err = (await auth.challenged('reg', CHALLENGE, [scope('a')], undefined).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(AuthError);
    expect(err.message).toContain('reg');
    expect(err.message).not.toContain('sekrit');
  });

  it('refused() names the registry and the scope the registry insisted on', async () => {
    const { transport } = fakeTransport('https://reg', issuing());
    const auth = new Authenticator(staticCredentials({ reg: { username: 'u', password: 'p' } }), transport);
    const err = await auth.refused('reg', 'Bearer realm="https://t",scope="repository:x/y:pull",error="insufficient_scope"', [scope('x/y')]);
    expect(err.message).toMatch(/^reg: access denied to repository:x\/y:pull .*insufficient_scope.*credentials used for reg/);
    const anon = new Authenticator(staticCredentials({}), transport);
    expect((await anon.refused('reg', 'Bearer realm="https://t"', [scope('x/y')])).message).toContain('docker login reg');
    expect((await auth.refused('reg', 'Basic realm="r"', [])).message).toMatch(/refused the credentials/);
  });
});
