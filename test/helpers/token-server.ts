import { execFile } from 'node:child_process';
import { createSign, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One request the token service answered, for assertions on what the client asked. */
export interface TokenRequest {
  method: string;
  user?: string;
  service?: string;
  scopes: string[];
  granted: boolean;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** The certificate whose key signs tokens: the registry's `rootcertbundle`. */
  certFile: string;
  requests: TokenRequest[];
  /** Every token handed out, to check that none is ever printed. */
  issued: string[];
  stop(): Promise<void>;
}

export interface TokenServerOptions {
  /** Repositories a user may not pull (nor push): a token without those actions, as Docker Hub does. */
  denyPull?: Record<string, string[]>;
  /** Answer POST (the refresh-token grant) with this status, like registries that only do GET. */
  postStatus?: number;
  /**
   * Grant one repository per token, like token services that refuse multi-repository tokens:
   * when a request names several repositories, only those asked for push are granted (so a
   * cross-repository mount is refused by the registry).
   */
  oneRepositoryPerToken?: boolean;
  /** Serve HTTPS with this certificate and key (PEM files): the realm is then https://. */
  tls?: { certFile: string; keyFile: string };
  /** Listen here instead of 127.0.0.1 (to match a certificate for a non-loopback address). */
  bindAddress?: string;
}

/**
 * A Docker token service (the distribution "token" auth spec) for tests: anonymous callers get
 * pull on every repository, listed users get pull and push; a wrong password is refused.
 * An identity token (OAuth2 refresh-token grant) is accepted in place of a password.
 * Tokens are RS256 JWTs carrying the signing certificate in `x5c`, which registry:2 checks
 * against the certificate bundle it was configured with.
 */
export async function startTokenServer(users: Record<string, string>, identityTokens: Record<string, string> = {}, options: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'cnab-oci-token-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=cnab-oci-test-token-issuer']);
  const key = await readFile(keyFile, 'utf8');
  const certDer = new X509Certificate(await readFile(certFile)).raw.toString('base64');
  const service = 'cnab-oci-test-registry';
  const issuer = 'cnab-oci-test-issuer';
  const requests: TokenRequest[] = [];
  const issued: string[] = [];

  const handler: RequestListener = async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let user: string | undefined;
    let scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    let svc = url.searchParams.get('service') ?? undefined;
    let ok = true;
    if (req.method === 'POST' && options.postStatus) {
      requests.push({ method: 'POST', scopes: [], granted: false });
      res.writeHead(options.postStatus).end();
      return;
    }
    if (req.method === 'POST') {
      const form = new URLSearchParams(await body(req));
      svc = form.get('service') ?? undefined;
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      const found = Object.entries(identityTokens).find(([, t]) => t === form.get('refresh_token'));
      user = found?.[0];
      ok = form.get('grant_type') === 'refresh_token' && Boolean(found);
    } else {
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        user = decoded.slice(0, colon);
        const secret = decoded.slice(colon + 1);
        // An identity token is accepted as the Basic password too (GET-only token services).
        const byToken = Object.entries(identityTokens).find(([, t]) => t === secret)?.[0];
        if (byToken !== undefined) user = byToken;
        ok = byToken !== undefined || (users[user] !== undefined && users[user] === secret);
      }
    }
    requests.push({ method: req.method ?? 'GET', user, service: svc, scopes, granted: ok });
    if (!ok) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const names = new Set(scopes.map((s) => s.split(':').slice(1, -1).join(':')));
    const access = scopes.flatMap((scope) => {
      const [type, ...rest] = scope.split(':');
      const actions = (rest.pop() ?? '').split(',');
      const name = rest.join(':');
      if (type !== 'repository') return [];
      if (user !== undefined && options.denyPull?.[user]?.includes(name)) return [{ type, name, actions: [] }];
      if (options.oneRepositoryPerToken && names.size > 1 && !actions.includes('push')) return [{ type, name, actions: [] }];
      return [{ type, name, actions: actions.filter((a) => a === 'pull' || (a === 'push' && user !== undefined)) }];
    });
    const now = Math.floor(Date.now() / 1000);
    const token = jwt({ alg: 'RS256', typ: 'JWT', x5c: [certDer] }, { iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access }, key);
    issued.push(token);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: await readFile(options.tls.certFile), key: await readFile(options.tls.keyFile) }, handler)
    : createServer(handler);
  const host = options.bindAddress ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    realm: `${options.tls ? 'https' : 'http'}://${host}:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    issued,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function jwt(header: object, claims: object, key: string): string {
  const encode = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${encode(header)}.${encode(claims)}`;
  const signature = createSign('RSA-SHA256').update(input).sign(key).toString('base64url');
  return `${input}.${signature}`;
}

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text;
}
