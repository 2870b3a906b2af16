import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startCnrServer, type Answer, type CnrServer } from '../helpers/cnr-server.js';
import { makePackage, makeTarball, pushBody } from '../helpers/cnr-packages.js';
import { freePort } from '../helpers/registry.js';
import { CLI } from '../helpers/cli.js';


const USER = 'alice';
const PASSWORD = `alice-pw-${randomBytes(6).toString('hex')}`;
const WRONG = `wrong-pw-${randomBytes(6).toString('hex')}`;
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const GOOD = basic(USER, PASSWORD);

function expectError(res: Answer, status: number, code: string, what = ''): void {
  expect(res.status, `${what} ${res.body.toString()}`).toBe(status);
  expect(String(res.headers['content-type']), what).toMatch(/^application\/json/);
  expect(Object.keys(res.json as object).sort(), what).toEqual(['code', 'details', 'message']);
  expect((res.json as { code: string }).code, what).toBe(code);
}

/** The built CLI, killed if it is still running after `ms` (a server that should not have started). */
function runCli(args: string[], ms = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: ms, killSignal: 'SIGKILL' });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** Wait until `predicate` holds of the server's stderr (the access log is written once per tick). */
async function waitForLog(server: CnrServer, predicate: (text: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 5000;
  while (!predicate(server.stderr())) {
    if (Date.now() > deadline) throw new Error(`access log never showed ${what}:\n${server.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return server.stderr();
}

describe('CNR server authentication and exposure (layout store)', () => {
  let root: string;
  let store: string;
  let htpasswd: string;
  let server: CnrServer;
  let readOnly: CnrServer;
  let api: string;
  let blob: Buffer;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cnab-oci-cnr-auth-'));
    store = join(root, 'store');
    htpasswd = join(root, 'htpasswd');
    // Cost 4, bcrypt's minimum: the test is about the protocol, not the hashing.
    await writeFile(htpasswd, `# users\n${USER}:${bcrypt.hashSync(PASSWORD, 4)}\nbob:${bcrypt.hashSync('bob-pw', 4)}\n`);
    [server, readOnly] = await Promise.all([
      startCnrServer({ storage: `oci:${store}`, args: ['--htpasswd', htpasswd, '--log-format', 'json'] }),
      // The same directory, served read-only: it reads what the other one writes.
      startCnrServer({ storage: `oci:${store}`, args: ['--read-only'] }),
    ]);
    api = `${server.url}/api/v1/packages`;
    blob = await makePackage('app', 'auth');
  });

  afterAll(async () => {
    const codes = await Promise.all([server?.stop(), readOnly?.stop()]);
    await rm(root, { recursive: true, force: true });
    expect(codes).toEqual([0, 0]);
  });

  describe('--htpasswd', () => {
    it('answers anonymous writes with 401 unauthorized-access and WWW-Authenticate', async () => {
      const writes: [string, string, string?][] = [
        ['POST', 'auth/app', pushBody(blob, '1.0.0')],
        ['DELETE', 'auth/app/1.0.0/kpm'],
        ['POST', 'auth/app/channels/dev/1.0.0'],
        ['DELETE', 'auth/app/channels/dev/1.0.0'],
        ['DELETE', 'auth/app/channels/dev'],
      ];
      for (const base of [api, `${server.url}/cnr/api/v1/packages`]) {
        for (const [method, path, body] of writes) {
          const res = await call(`${base}/${path}`, { method, ...(body ? { body } : {}) });
          expectError(res, 401, 'unauthorized-access', `${method} ${path}`);
          expect(String(res.headers['www-authenticate']), `${method} ${path}`).toMatch(/^Basic realm=/);
        }
      }
      expectError(await call(`${api}/auth/app`), 404, 'package-not-found');
      expect(existsSync(join(store, 'auth', 'app'))).toBe(false);
    });

    it('answers bad credentials with 401', async () => {
      const headers = [basic(USER, WRONG), basic('mallory', PASSWORD), basic(USER, ''), 'Bearer abc.def.ghi', 'Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, 'Basic', `basic ${Buffer.from(`${USER}:${WRONG}`).toString('base64')}`];
      for (const authorization of headers) {
        const res = await call(`${api}/auth/app`, { method: 'POST', body: pushBody(blob, '1.0.0'), headers: { authorization } });
        expectError(res, 401, 'unauthorized-access', authorization);
        expect(res.headers['www-authenticate']).toBeDefined();
      }
      expectError(await call(`${api}/auth/app`), 404, 'package-not-found');
    });

    it('refuses an anonymous push before reading its body', async () => {
      // A Content-Length of 60 MiB, and only a few bytes sent: the answer comes without the rest.
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        let done = false;
        const req = httpRequest({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/api/v1/packages/auth/big', headers: { 'content-length': String(60 * 1024 * 1024) } }, (r) => {
          let body = '';
          r.setEncoding('utf8').on('data', (d: string) => (body += d));
          r.on('end', () => {
            done = true;
            resolve({ status: r.statusCode ?? 0, body });
            req.destroy();
          });
        });
        req.on('error', (err) => (done ? undefined : reject(err)));
        req.setTimeout(5000, () => reject(new Error('no answer before the body was sent')));
        req.write('{"blob": "');
      });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'unauthorized-access' });
    });

    it('takes Basic credentials for every write', async () => {
      const headers = { authorization: GOOD };
      expect((await call(`${api}/auth/app`, { method: 'POST', body: pushBody(blob, '1.0.0'), headers })).json).toEqual({ status: 'ok' });
      expect((await call(`${api}/auth/app`, { method: 'POST', body: pushBody(await makePackage('app', 'two'), '2.0.0'), headers })).json).toEqual({ status: 'ok' });
      expect((await call(`${api}/auth/app/channels/dev/1.0.0`, { method: 'POST', headers })).json).toEqual({ name: 'dev', current: '1.0.0', releases: ['1.0.0'] });
      expect((await call(`${api}/auth/app/channels/dev/2.0.0`, { method: 'POST', headers })).status).toBe(200);
      expect((await call(`${api}/auth/app/channels/dev/2.0.0`, { method: 'DELETE', headers })).json).toEqual({ status: 'deleted', package: 'auth/app', name: 'dev', release: '2.0.0' });
      expect((await call(`${api}/auth/app/channels/tmp/2.0.0`, { method: 'POST', headers })).status).toBe(200);
      expect((await call(`${api}/auth/app/channels/tmp`, { method: 'DELETE', headers })).json).toEqual({ channel: 'tmp', package: 'auth/app', action: 'delete' });
      expect((await call(`${api}/auth/app/2.0.0/kpm`, { method: 'DELETE', headers })).json).toEqual({ status: 'deleted', package: 'auth/app', release: '2.0.0' });
      // The scheme is case-insensitive, and another user of the file works too.
      expect((await call(`${api}/auth/app`, { method: 'POST', body: pushBody(await makePackage('app', 'three'), '3.0.0'), headers: { authorization: basic('bob', 'bob-pw').replace('Basic', 'BASIC') } })).json).toEqual({ status: 'ok' });
      // The user is in the access log; the credentials are not.
      const log = await waitForLog(server, (t) => t.includes('"user":"bob"'), 'the user bob');
      expect(log).toContain('"user":"alice"');
    });

    it('logs in as Quay does, and takes the token as the Authorization header', async () => {
      for (const base of [`${server.url}/api/v1`, `${server.url}/cnr/api/v1`]) {
        const res = await call(`${base}/users/login`, { method: 'POST', body: JSON.stringify({ user: { username: USER, password: PASSWORD } }), headers: { 'content-type': 'application/json' } });
        expect(res.status, res.body.toString()).toBe(200);
        expect(res.json).toEqual({ token: `basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` });
      }
      const { token } = (await call(`${server.url}/api/v1/users/login`, { method: 'POST', body: JSON.stringify({ user: { username: USER, password: PASSWORD } }) })).json as { token: string };
      const pushed = await call(`${api}/auth/token`, { method: 'POST', body: pushBody(blob, '1.0.0'), headers: { authorization: token } });
      expect(pushed.json).toEqual({ status: 'ok' });
      expect((await call(`${api}/auth/token/channels/stable/1.0.0`, { method: 'POST', headers: { authorization: token } })).status).toBe(200);
      expect((await call(`${api}/auth/token/1.0.0/kpm`)).json).toMatchObject({ channels: ['stable'] });
    });

    it('answers a failed login with 401 and a malformed one with 400', async () => {
      const login = (body: string) => call(`${server.url}/api/v1/users/login`, { method: 'POST', body });
      expectError(await login(JSON.stringify({ user: { username: USER, password: WRONG } })), 401, 'unauthorized-access', 'wrong password');
      expectError(await login(JSON.stringify({ user: { username: 'mallory', password: WRONG } })), 401, 'unauthorized-access', 'unknown user');
      const malformed = ['{}', '{"user": {}}', `{"user": {"username": "${USER}"}}`, `{"user": {"password": "${WRONG}"}}`, `{"username": "${USER}", "password": "${WRONG}"}`, '{"user": {"username": "", "password": "x"}}', '{"user": {"username": 1, "password": 2}}', '{"user": null}', 'null', '[]', 'not json', ''];
      for (const body of malformed) expectError(await login(body), 400, 'invalid-usage', body);
    });

    it('serves reads anonymously', async () => {
      const list = (await call(api)).json as { name: string }[];
      expect(list.map((e) => e.name)).toEqual(expect.arrayContaining(['auth/app', 'auth/token']));
      expect(((await call(`${api}/auth/app`)).json as unknown[]).length).toBe(2);
      expect((await call(`${api}/auth/app/1.0.0/kpm`)).status).toBe(200);
      expect((await call(`${api}/auth/app/1.0.0/kpm/pull`)).body.equals(blob)).toBe(true);
      expect((await call(`${api}/auth/app/channels`)).json).toEqual([{ name: 'dev', current: '1.0.0', releases: ['1.0.0'] }]);
      expect((await call(`${api}/search?q=auth`)).json).toEqual(expect.arrayContaining(['auth/app']));
      expect((await call(`${server.url}/cnr/version`)).status).toBe(200);
      // A wrong Authorization header on a read is not looked at.
      expect((await call(`${api}/auth/app/1.0.0/kpm`, { headers: { authorization: basic(USER, WRONG) } })).status).toBe(200);
    });

    it('writes one JSON line per request, never with a password or token', async () => {
      const marker = `marker-${randomBytes(4).toString('hex')}`;
      for (let i = 0; i < 5; i++) await call(`${api}/search?q=${marker}-${i}`);
      expectError(await call(`${api}/${marker}/x/1.0.0/kpm`, { method: 'DELETE' }), 401, 'unauthorized-access');
      // Credential-like query parameters are redacted.
      await call(`${api}?password=${PASSWORD}&token=${encodeURIComponent(GOOD)}&q=${marker}`);
      // Logins that work, fail and are malformed.
      const login = (user: unknown) => call(`${server.url}/api/v1/users/login`, { method: 'POST', body: JSON.stringify({ user }) });
      expect((await login({ username: USER, password: PASSWORD })).status).toBe(200);
      expect((await login({ username: USER, password: WRONG })).status).toBe(401);
      expect((await login({ username: USER })).status).toBe(400);
      // A URL the router refuses (bad percent-encoding) is logged too, redacted the same way.
      expectError(await call(`${api}/${marker}/%zz?password=${PASSWORD}`), 400, 'invalid-usage');
      const log = await waitForLog(server, (t) => t.includes(`q=${marker}`) && t.includes(`/${marker}/x/`) && t.includes('%zz'), 'the marker requests');
      const lines = log.split('\n').filter((l) => l.startsWith('{'));
      const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const e of entries) {
        expect(typeof e.method).toBe('string');
        expect(typeof e.path).toBe('string');
        expect(typeof e.status).toBe('number');
        expect(typeof e.duration_ms).toBe('number');
      }
      const marked = entries.filter((e) => String(e.path).includes(`${marker}-`));
      expect(marked.map((e) => [e.method, e.path, e.status])).toEqual([0, 1, 2, 3, 4].map((i) => ['GET', `/api/v1/packages/search?q=${marker}-${i}`, 200]));
      expect(entries.find((e) => e.path === `/api/v1/packages/${marker}/x/1.0.0/kpm`)).toMatchObject({ method: 'DELETE', status: 401 });
      const redacted = entries.find((e) => String(e.path).includes(`q=${marker}`) && String(e.path).includes('password'));
      expect(redacted?.path).toMatch(/password=REDACTED/);
      expect(entries.find((e) => String(e.path).startsWith(`/api/v1/packages/${marker}/%zz`))).toMatchObject({ method: 'GET', status: 400, path: `/api/v1/packages/${marker}/%zz?password=REDACTED` });
      // Failed logins are logged as such.
      expect(entries.filter((e) => e.path === '/api/v1/users/login').map((e) => e.status)).toEqual(expect.arrayContaining([200, 401, 400]));
      // Everything written on stderr, failed logins included.
      for (const secret of [PASSWORD, WRONG, 'bob-pw', Buffer.from(`${USER}:${PASSWORD}`).toString('base64'), Buffer.from(`${USER}:${WRONG}`).toString('base64'), Buffer.from(`mallory:${PASSWORD}`).toString('base64'), Buffer.from('bob:bob-pw').toString('base64')]) {
        expect(log, secret).not.toContain(secret);
      }
      expect(log).not.toMatch(/basic [A-Za-z0-9+/=]{8,}/i);
    });
  });

  describe('--read-only', () => {
    it('answers writes with 403 forbidden, credentials or not', async () => {
      const ro = `${readOnly.url}/api/v1/packages`;
      const writes: [string, string, string?][] = [
        ['POST', 'auth/app', pushBody(blob, '4.0.0')],
        ['POST', 'ro/new', pushBody(blob, '1.0.0')],
        ['DELETE', 'auth/app/1.0.0/kpm'],
        ['POST', 'auth/app/channels/dev/3.0.0'],
        ['DELETE', 'auth/app/channels/dev/1.0.0'],
        ['DELETE', 'auth/app/channels/dev'],
      ];
      for (const headers of [{}, { authorization: GOOD }] as Record<string, string>[]) {
        for (const [method, path, body] of writes) {
          expectError(await call(`${ro}/${path}`, { method, headers, ...(body ? { body } : {}) }), 403, 'forbidden', `${method} ${path}`);
        }
      }
      expect(((await call(`${ro}/auth/app`)).json as { release: string }[]).map((v) => v.release).sort()).toEqual(['1.0.0', '3.0.0']);
      expect((await call(`${ro}/auth/app/channels/dev`)).json).toEqual({ name: 'dev', current: '1.0.0', releases: ['1.0.0'] });
      expect(existsSync(join(store, 'ro'))).toBe(false);
    });

    it('serves reads', async () => {
      const ro = `${readOnly.url}/api/v1/packages`;
      expect((await call(`${ro}/auth/app/1.0.0/kpm/pull`)).body.equals(blob)).toBe(true);
      expect((await call(`${readOnly.url}/cnr/api/v1/packages/auth/app/default/kpm`)).json).toMatchObject({ release: '3.0.0' });
      expect((await call(`${ro}/auth/token/channels`)).json).toEqual([{ name: 'stable', current: '1.0.0', releases: ['1.0.0'] }]);
      const listed = (await call(ro)).json as { name: string }[];
      expect(listed.map((e) => e.name)).toEqual(expect.arrayContaining(['auth/app', 'auth/token']));
    });

    it('writes one text line per request, never with a password', async () => {
      const marker = `ro-${randomBytes(4).toString('hex')}`;
      await call(`${readOnly.url}/api/v1/users/login`, { method: 'POST', body: JSON.stringify({ user: { username: USER, password: PASSWORD } }) });
      await call(`${readOnly.url}/api/v1/packages/search?q=${marker}`);
      await call(`${readOnly.url}/api/v1/packages/${marker}/x`, { method: 'POST', body: '{}', headers: { authorization: GOOD } });
      const log = await waitForLog(readOnly, (t) => t.includes(`/${marker}/x`), 'the marker requests');
      const line = (needle: string) => log.split('\n').filter((l) => l.includes(needle));
      expect(line(`q=${marker}`)).toHaveLength(1);
      expect(line(`q=${marker}`)[0]).toMatch(new RegExp(`"GET /api/v1/packages/search\\?q=${marker}" 200 [0-9.]+ms$`));
      expect(line(`/${marker}/x`)[0]).toMatch(new RegExp(`"POST /api/v1/packages/${marker}/x" 403 [0-9.]+ms$`));
      expect(line('/api/v1/users/login')[0]).toMatch(/"POST \/api\/v1\/users\/login" 200 [0-9.]+ms$/);
      expect(log).not.toContain(PASSWORD);
      expect(log).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
    });
  });

  describe('exposure', () => {
    it('refuses anonymous writes on a non-loopback address: exit status 2 and one line saying why', async () => {
      for (const host of ['0.0.0.0', '[::]']) {
        const port = await freePort();
        const res = await runCli(['cnr', 'serve', '--listen', `${host}:${port}`, '--storage', `oci:${join(root, 'exposed')}`]);
        expect(res.signal, res.stderr).toBeNull();
        expect(res.code, res.stderr).toBe(2);
        const lines = res.stderr.split('\n').filter((l) => l.trim() !== '');
        expect(lines, res.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(/^cnab-oci: error: /);
        expect(lines[0]).toMatch(/anonymous writes/);
        expect(lines[0]).toMatch(/--htpasswd/);
        expect(lines[0]).toMatch(/--read-only/);
        expect(lines[0]).toMatch(/--anonymous-writes/);
      }
    });

    it('starts there with --anonymous-writes, --read-only or --htpasswd', async () => {
      const open = await startCnrServer({ storage: `oci:${join(root, 'exposed')}`, host: '0.0.0.0', args: ['--anonymous-writes'] });
      try {
        const res = await call(`http://127.0.0.1:${open.port}/api/v1/packages/open/app`, { method: 'POST', body: pushBody(blob, '1.0.0') });
        expect(res.json).toEqual({ status: 'ok' });
      } finally {
        expect(await open.stop()).toBe(0);
      }
      for (const args of [['--read-only'], ['--htpasswd', htpasswd]]) {
        const s = await startCnrServer({ storage: `oci:${join(root, 'exposed')}`, host: '0.0.0.0', args });
        try {
          expect((await call(`http://127.0.0.1:${s.port}/api/v1/packages/open/app/1.0.0/kpm`)).status).toBe(200);
          expect((await call(`http://127.0.0.1:${s.port}/api/v1/packages/open/app`, { method: 'POST', body: pushBody(blob, '2.0.0') })).status).toBe(args[0] === '--read-only' ? 403 : 401);
        } finally {
          expect(await s.stop()).toBe(0);
        }
      }
    });
  });

  it('stops on SIGTERM with status 0, finishing a slow push in flight', async () => {
    const dir = join(root, 'sigterm');
    const s = await startCnrServer({ storage: `oci:${dir}` });
    // A client that keeps its connection after the answer, as undici does for the 72 s the
    // server's Keep-Alive header offers: shutdown must not wait for it to hang up.
    const agent = new Agent({ keepAlive: true, timeout: 60_000 });
    try {
      const big = await makeTarball([{ name: 'big/data.bin', content: randomBytes(4 * 1024 * 1024) }]);
      const body = Buffer.from(pushBody(big, '1.0.0'));
      const exited = new Promise<number | null>((resolve) => s.child.once('exit', (code) => resolve(code)));
      let signalled = 0;
      const answer = new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
        const req = httpRequest({ agent, host: '127.0.0.1', port: s.port, method: 'POST', path: '/api/v1/packages/slow/push', headers: { 'content-length': String(body.length) } }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body: text }));
        });
        req.on('error', reject);
        // The first bytes now; SIGTERM while the request is in flight; the rest after a while.
        req.write(body.subarray(0, 64 * 1024));
        setTimeout(() => {
          s.kill('SIGTERM');
          signalled = Date.now();
          setTimeout(() => req.end(body.subarray(64 * 1024)), 700);
        }, 500);
      });
      const res = await answer;
      const answered = Date.now();
      expect(res.status, res.body).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
      expect(answered - signalled).toBeGreaterThanOrEqual(600);
      expect(res.connection).toBe('close');
      expect(await exited).toBe(0);
      // Without waiting for the client's keep-alive to end.
      expect(Date.now() - answered).toBeLessThan(3000);
      expect(s.stderr()).toMatch(/SIGTERM/);
      // The push landed: its release is tagged in the package's layout.
      const index = JSON.parse(await readFile(join(dir, 'slow', 'push', 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
      expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toContain('release-1.0.0');
      // And nothing listens any more.
      await expect(call(`${s.url}/version`)).rejects.toThrow();
    } finally {
      agent.destroy();
      await s.stop();
    }
  });
});
