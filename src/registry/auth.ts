import { z } from 'zod';
import type { Credential, CredentialStore } from './credentials.js';
import { AuthError } from './errors.js';
import { header, type Transport } from './transport.js';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parse a WWW-Authenticate header (RFC 7235): `Bearer realm="...",service="...",scope="..."`.
 * Several challenges may share one header; quoted values may hold commas.
 */
export function parseChallenges(value: string): Challenge[] {
  const challenges: Challenge[] = [];
  let current: Challenge | undefined;
  let i = 0;
  const token = (): string => {
    const m = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(value.slice(i));
    i += m ? m[0].length : 0;
    return m ? m[0] : '';
  };
  const spaces = (): void => {
    while (value[i] === ' ' || value[i] === '\t') i++;
  };
  while (i < value.length) {
    while (i < value.length && /[\s,]/.test(value[i]!)) i++;
    const word = token();
    if (!word) {
      i++;
      continue;
    }
    spaces();
    if (value[i] === '=' && current) {
      i++;
      spaces();
      let v = '';
      if (value[i] === '"') {
        for (i++; i < value.length && value[i] !== '"'; i++) {
          if (value[i] === '\\') i++;
          v += value[i] ?? '';
        }
        i++;
      } else {
        v = token();
      }
      current.params[word.toLowerCase()] = v;
    } else {
      current = { scheme: word.toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;
}

const TokenResponse = z.object({
  token: z.string().optional(),
  access_token: z.string().optional(),
  expires_in: z.number().optional(),
  refresh_token: z.string().optional(),
});

interface CachedToken {
  value: string;
  expiresAt: number;
}

/**
 * Tokens are reused until shortly before they expire. 60 s is the spec's default lifetime and,
 * as in Docker, the floor: a shorter (or missing) `expires_in` counts as 60 s.
 */
const MIN_TOKEN_SECONDS = 60;
const EXPIRY_MARGIN_MS = 10_000;

/**
 * Authorization for registries, per host: Basic with the stored credential, or the Docker token
 * flow (a token from the realm for the scopes a request needs, cached per scope set).
 * Credentials are read once per host and never logged.
 */
export class Authenticator {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, Promise<CachedToken>>();
  private readonly credentials = new Map<string, Promise<Credential | undefined>>();

  constructor(private readonly store: CredentialStore, private readonly transport: Transport) {}

  /** The Authorization header to send up front, when this host's challenge is already known. */
  async authorization(registry: string, scopes: string[]): Promise<string | undefined> {
    const challenge = this.challenges.get(registry);
    if (!challenge) return undefined;
    return this.answer(registry, challenge, scopes);
  }

  /**
   * The registry answered 401: remember its challenge and return the header to retry with, or
   * undefined when we have nothing better to offer (no credential, or the same token again).
   */
  async challenged(registry: string, wwwAuthenticate: string | undefined, scopes: string[], sent: string | undefined): Promise<string | undefined> {
    const challenge = pickChallenge(wwwAuthenticate);
    if (!challenge) return undefined;
    this.challenges.set(registry, challenge);
    if (challenge.scheme === 'bearer' && sent) {
      // Forget the token only when it is the one refused: requests that were sent before any
      // token existed (a burst of first requests) share one fetch instead of one each.
      const key = tokenKey(registry, challenge, scopes);
      const cached = await this.tokens.get(key)?.catch(() => undefined);
      if (!cached || `Bearer ${cached.value}` === sent) this.tokens.delete(key);
    }
    const next = await this.answer(registry, challenge, scopes);
    return next && next !== sent ? next : undefined;
  }

  private credential(registry: string): Promise<Credential | undefined> {
    let c = this.credentials.get(registry);
    if (!c) {
      c = this.store.get(registry);
      this.credentials.set(registry, c);
    }
    return c;
  }

  private async answer(registry: string, challenge: Challenge, scopes: string[]): Promise<string | undefined> {
    const cred = await this.credential(registry);
    if (challenge.scheme === 'basic') {
      if (!cred?.username) return undefined;
      return `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`;
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (cred?.registryToken) return `Bearer ${cred.registryToken}`;
    const key = tokenKey(registry, challenge, scopes);
    const cached = this.tokens.get(key);
    if (cached) {
      // Waiters share the fetch in flight, its failure included (one refusal, not one per request).
      const t = await cached;
      if (t.expiresAt > Date.now()) return `Bearer ${t.value}`;
      const renewed = this.tokens.get(key);
      if (renewed && renewed !== cached) return `Bearer ${(await renewed).value}`;
    }
    const fresh = this.fetchToken(registry, challenge, scopes, cred);
    this.tokens.set(key, fresh);
    fresh.catch(() => {
      if (this.tokens.get(key) === fresh) this.tokens.delete(key);
    });
    return `Bearer ${(await fresh).value}`;
  }

  private async fetchToken(registry: string, challenge: Challenge, scopes: string[], cred: Credential | undefined): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) throw new AuthError(`${registry}: the registry asked for a bearer token without saying where to get one`, 401);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new AuthError(`${registry}: token realm ${JSON.stringify(realm)} is not a URL`, 401);
    }
    // Credentials go only where they belong: an HTTPS registry's token service must be HTTPS
    // too, or a hostile registry could have them (or a request) sent to any plain-HTTP address.
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new AuthError(`${registry}: token realm ${url.origin} is not an http(s) URL`, 401);
    }
    if (url.protocol === 'http:' && (await this.transport.origin(registry)).startsWith('https:')) {
      throw new AuthError(`${registry}: refusing token realm ${url.origin}: the registry is served over HTTPS but its token service is plain HTTP; nothing was sent there`, 401);
    }
    const service = challenge.params.service;
    const allScopes = [...new Set([...(challenge.params.scope ? challenge.params.scope.split(' ') : []), ...scopes])].sort();

    if (cred?.identityToken) {
      // OAuth2 refresh-token grant, as Docker does for identity tokens.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'cnab-oci' });
      if (service) form.set('service', service);
      if (allScopes.length) form.set('scope', allScopes.join(' '));
      const res = await this.transport.send(url.toString(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
      });
      // Token services that only implement GET (404/405 on POST): as containerd does, ask with
      // GET and the identity token as the Basic password.
      if (res.statusCode !== 404 && res.statusCode !== 405) return this.readToken(registry, res);
      await res.body.dump();
      this.transport.log(`${registry}: token service does not take POST (HTTP ${res.statusCode}); asking with GET`);
      return this.getToken(registry, url, service, allScopes, { username: cred.username || '<token>', password: cred.identityToken });
    }
    return this.getToken(registry, url, service, allScopes, cred);
  }

  private async getToken(registry: string, realm: URL, service: string | undefined, scopes: string[], cred: Credential | undefined): Promise<CachedToken> {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    // Docker names the account it asks for (some token services want it).
    if (cred?.username && cred.username !== '<token>') url.searchParams.set('account', cred.username);
    const headers: Record<string, string> = {};
    if (cred?.username) headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`;
    const res = await this.transport.send(url.toString(), { method: 'GET', headers });
    return this.readToken(registry, res);
  }

  /**
   * The registry answered 401 to a request that carried a token fetched just now (or the
   * credentials it asked for): say which registry and which scope, rather than ask again.
   */
  async refused(registry: string, wwwAuthenticate: string | undefined, scopes: string[]): Promise<AuthError> {
    const challenge = pickChallenge(wwwAuthenticate);
    const scope = challenge?.params.scope || scopes.join(' ');
    const cred = await this.credential(registry).catch(() => undefined);
    if (challenge?.scheme !== 'bearer' || !scope) {
      return new AuthError(`${registry}: the registry refused the credentials (HTTP 401); check them with docker login ${registry}`, 401);
    }
    const why = challenge.params.error ? ` (${challenge.params.error})` : '';
    const who = cred ? `the credentials used for ${registry} do not grant it` : `no credentials for ${registry} were found (docker login ${registry})`;
    return new AuthError(`${registry}: access denied to ${scope} even with a fresh token${why}; ${who}`, 401, challenge.params.error ? [challenge.params.error.toUpperCase()] : []);
  }

  private async readToken(registry: string, res: Awaited<ReturnType<Transport['send']>>): Promise<CachedToken> {
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new AuthError(`${registry}: the token service refused the credentials (HTTP ${res.statusCode}); check them with docker login ${registry}`, res.statusCode);
    }
    if (res.statusCode >= 300) throw new AuthError(`${registry}: token service answered HTTP ${res.statusCode}`, res.statusCode);
    let body: z.infer<typeof TokenResponse>;
    try {
      body = TokenResponse.parse(JSON.parse(text));
    } catch {
      throw new AuthError(`${registry}: token service answered with something that is not a token`, res.statusCode);
    }
    const value = body.token || body.access_token;
    if (!value) throw new AuthError(`${registry}: token service answered without a token`, res.statusCode);
    const seconds = Math.max(body.expires_in ?? 0, MIN_TOKEN_SECONDS);
    return { value, expiresAt: Date.now() + seconds * 1000 - EXPIRY_MARGIN_MS };
  }
}

/** Prefer Bearer over Basic when a registry offers both. */
function pickChallenge(value: string | undefined): Challenge | undefined {
  if (!value) return undefined;
  const all = parseChallenges(value);
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
}

function tokenKey(registry: string, challenge: Challenge, scopes: string[]): string {
  return `${registry}\n${challenge.params.realm ?? ''}\n${challenge.params.service ?? ''}\n${[...scopes].sort().join(' ')}`;
}

export { header };
