import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { staticCredentials } from '../../src/registry/credentials.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { makeCredentialHelper, pathWith } from '../helpers/credential-helper.js';
import { pushImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const PASSWORD = 'l0gin-pa55-never-printed';
const ID_TOKEN = 'login-identity-token-never-printed';
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** No containers auth.json from the machine running the tests. */
const NO_CONTAINERS_AUTH = { REGISTRY_AUTH_FILE: undefined, XDG_RUNTIME_DIR: undefined };

let work: string;
let htpasswd: TestRegistry;
let tokens: TokenServer;
let tokenRegistry: TestRegistry;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cnab-oci-login-'));
  tokens = await startTokenServer({ bob: PASSWORD }, { carol: ID_TOKEN }, { denyPull: { bob: ['secret/app'] } });
  [htpasswd, tokenRegistry] = await Promise.all([
    startRegistry({ htpasswd: { bob: PASSWORD } }),
    startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundleFile: tokens.certFile } }),
  ]);
  const client = new RegistryClient({ credentials: staticCredentials({ [htpasswd.host]: { username: 'bob', password: PASSWORD }, [tokenRegistry.host]: { username: 'bob', password: PASSWORD } }) });
  for (const host of [htpasswd.host, tokenRegistry.host]) {
    const app = client.repository(parseReference(`${host}/src/app`));
    await app.tag(await pushImage(app), '1.0');
  }
  await client.close();
});
afterAll(async () => {
  await Promise.all([htpasswd?.stop(), tokenRegistry?.stop()]);
  await tokens?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Push a small bundle whose image is already in the target's registry (src/app:1.0, mounted). */
const pushFixture = async (target: string, env: Record<string, string | undefined>, ...flags: string[]) => {
  const host = target.slice(0, target.indexOf('/'));
  const path = join(work, `small-${host}.bundle.json`);
  await writeFile(path, JSON.stringify({ schemaVersion: 'v1.2.0', name: 'small', version: '1.0.0', invocationImages: [{ imageType: 'oci', image: `${host}/src/app:1.0` }] }));
  return runCli([...flags, 'push', path, '--target', target], { env });
};

const login = (registry: string, password: string, env: Record<string, string | undefined>, ...flags: string[]) =>
  runCli([...flags, 'login', registry, '-u', 'bob', '--password-stdin'], { env, input: `${password}\n` });

async function readJson(path: string): Promise<Record<string, any>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, any>;
}

describe.concurrent('login and logout with config.json', () => {
  it('verifies the password against the registry, then saves auths[host].auth with mode 0600; push uses it', async () => {
    const dir = join(work, 'plain');
    const env = { DOCKER_CONFIG: dir, ...NO_CONTAINERS_AUTH };
    const res = await login(htpasswd.host, PASSWORD, env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe('Login Succeeded');
    const config = join(dir, 'config.json');
    expect((await stat(config)).mode & 0o777).toBe(0o600);
    expect((await readJson(config)).auths[htpasswd.host]).toEqual({ auth: b64(`bob:${PASSWORD}`) });
    const push = await pushFixture(`${htpasswd.host}/acme/login:1`, env);
    expect(push.code, push.stderr).toBe(0);

    const out = await runCli(['logout', htpasswd.host], { env });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain(`Removing login credentials for ${htpasswd.host}`);
    expect((await readJson(config)).auths).toEqual({});
    const again = await pushFixture(`${htpasswd.host}/acme/login:2`, env);
    expect(again.code).toBe(1);
    const twice = await runCli(['logout', htpasswd.host], { env });
    expect(twice.code).toBe(0);
    expect(twice.stderr).toContain('Not logged in');
  });

  it('a wrong password exits 1 and saves nothing; an existing config.json is left as it was', async () => {
    const fresh = join(work, 'wrong-fresh');
    const res = await login(htpasswd.host, 'not-the-password', { DOCKER_CONFIG: fresh });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`cnab-oci: error: .*${htpasswd.host}`));
    await expect(stat(join(fresh, 'config.json'))).rejects.toThrow();

    const existing = join(work, 'wrong-existing');
    await mkdir(existing, { recursive: true });
    const before = JSON.stringify({ auths: { [htpasswd.host]: { auth: b64('bob:old') } }, psFormat: 'x' });
    await writeFile(join(existing, 'config.json'), before);
    const again = await login(htpasswd.host, 'still-wrong', { DOCKER_CONFIG: existing });
    expect(again.code).toBe(1);
    expect(await readFile(join(existing, 'config.json'), 'utf8')).toBe(before);
    for (const r of [res, again]) expect(r.stdout + r.stderr).not.toMatch(/not-the-password|still-wrong/);
  });

  it('logs in to a token registry (credentials exchanged for a token) and refuses a wrong password', async () => {
    const dir = join(work, 'token');
    const env = { DOCKER_CONFIG: dir, ...NO_CONTAINERS_AUTH };
    const bad = await login(tokenRegistry.host, 'wrong', env);
    expect(bad.code).toBe(1);
    await expect(stat(join(dir, 'config.json'))).rejects.toThrow();
    tokens.requests.length = 0;
    const res = await login(tokenRegistry.host, PASSWORD, env);
    expect(res.code, res.stderr).toBe(0);
    expect(tokens.requests.some((r) => r.user === 'bob' && r.granted)).toBe(true);
    expect((await readJson(join(dir, 'config.json'))).auths[tokenRegistry.host].auth).toBe(b64(`bob:${PASSWORD}`));
  });
});

describe.concurrent('login and logout with a credential helper', () => {
  it('credsStore: the helper stores the secret, config.json keeps no secret; push reads it back; logout erases it', async () => {
    const helper = await makeCredentialHelper(join(work, 'helper'), 'cnablogin');
    const dir = join(work, 'helper-config');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'cnablogin' }));
    const env = { DOCKER_CONFIG: dir, PATH: pathWith(helper.binDir), ...NO_CONTAINERS_AUTH };

    const wrong = await login(htpasswd.host, 'wrong', env);
    expect(wrong.code).toBe(1);
    expect(await helper.entries()).toEqual({});

    const res = await login(htpasswd.host, PASSWORD, env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('docker-credential-cnablogin');
    expect(await helper.entries()).toEqual({ [htpasswd.host]: { Username: 'bob', Secret: PASSWORD } });
    const text = await readFile(join(dir, 'config.json'), 'utf8');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(b64(`bob:${PASSWORD}`));
    expect(JSON.parse(text)).toEqual({ credsStore: 'cnablogin', auths: { [htpasswd.host]: {} } });

    const push = await pushFixture(`${htpasswd.host}/acme/helper:1`, env);
    expect(push.code, push.stderr).toBe(0);
    expect(await helper.calls()).toContainEqual({ action: 'get', serverURL: htpasswd.host });

    const out = await runCli(['logout', htpasswd.host], { env });
    expect(out.code, out.stderr).toBe(0);
    expect(await helper.entries()).toEqual({});
    expect(await helper.calls()).toContainEqual({ action: 'erase', serverURL: htpasswd.host });
    expect((await readJson(join(dir, 'config.json'))).auths).toEqual({});
    const again = await pushFixture(`${htpasswd.host}/acme/helper:2`, env);
    expect(again.code).toBe(1);
    // The helper's "credentials not found" means anonymous, not a helper failure.
    expect(again.stderr).toMatch(/authentication required/);
    expect(again.stderr).not.toMatch(/credential helper/);
  });

  it('credHelpers[host] is used for that host only', async () => {
    const helper = await makeCredentialHelper(join(work, 'per-host'), 'cnabperhost');
    const dir = join(work, 'per-host-config');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credHelpers: { [htpasswd.host]: 'cnabperhost' } }));
    const env = { DOCKER_CONFIG: dir, PATH: pathWith(helper.binDir), ...NO_CONTAINERS_AUTH };
    expect((await login(htpasswd.host, PASSWORD, env)).code).toBe(0);
    expect((await login(tokenRegistry.host, PASSWORD, env)).code).toBe(0);
    expect(Object.keys(await helper.entries())).toEqual([htpasswd.host]);
    const config = await readJson(join(dir, 'config.json'));
    expect(config.auths[tokenRegistry.host]).toEqual({ auth: b64(`bob:${PASSWORD}`) });
    expect(config.auths[htpasswd.host]).toEqual({});
  });
});

describe('no secret in any output, --debug included', () => {
  it('push, pull, login and their failures print no password, base64 auth, identity token or issued token', async () => {
    // A small bundle whose image is already in each registry (mounted, not copied): the test is about output.
    const bundles: Record<string, string> = {};
    for (const host of [tokenRegistry.host, htpasswd.host]) {
      bundles[host] = join(work, `secrets-${host}.bundle.json`);
      await writeFile(bundles[host], JSON.stringify({ schemaVersion: 'v1.2.0', name: 'secrets', version: '1.0.0', invocationImages: [{ imageType: 'oci', image: `${host}/src/app:1.0` }] }));
    }
    const pushSmall = (host: string, target: string, env: Record<string, string | undefined>) => runCli(['--debug', 'push', bundles[host]!, '--target', target], { env });

    const basicEnv = async (name: string, auths: Record<string, unknown>) => {
      const dir = join(work, 'secrets', name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths }));
      return { DOCKER_CONFIG: dir, ...NO_CONTAINERS_AUTH };
    };
    const good = (host: string) => ({ [host]: { auth: b64(`bob:${PASSWORD}`) } });
    const wrongPw = 'wr0ng-pa55-never-printed';
    const runs: [string, CliResult, number][] = [];
    const run = async (label: string, expected: number, p: Promise<CliResult>) => runs.push([label, await p, expected]);

    // The two registries side by side; each one's commands in order (push before pull).
    await Promise.all([tokenRegistry.host, htpasswd.host].map(async (host) => {
      const ok = await basicEnv(`ok-${host}`, good(host));
      const bad = await basicEnv(`bad-${host}`, { [host]: { auth: b64(`bob:${wrongPw}`) } });
      const target = `${host}/acme/secrets:1`;
      await run(`push ${host}`, 0, pushSmall(host, target, ok));
      await run(`pull ${host}`, 0, runCli(['--debug', 'pull', target, '--bundle', join(work, `sp-${host}.json`), '--relocation-map', join(work, `sm-${host}.json`)], { env: ok }));
      await run(`login ${host}`, 0, login(host, PASSWORD, await basicEnv(`login-${host}`, {}), '--debug'));
      await run(`login wrong ${host}`, 1, login(host, wrongPw, await basicEnv(`login-bad-${host}`, {}), '--debug'));
      await run(`push wrong ${host}`, 1, pushSmall(host, target, bad));
      await run(`pull wrong ${host}`, 1, runCli(['--debug', 'pull', target, '--bundle', join(work, `sx-${host}.json`)], { env: bad }));
    }));
    const carol = await basicEnv('carol', { [tokenRegistry.host]: { identitytoken: ID_TOKEN } });
    await run('push identity token', 0, pushSmall(tokenRegistry.host, `${tokenRegistry.host}/carol/secrets:1`, carol));
    const bob = await basicEnv('bob-denied', good(tokenRegistry.host));
    await run('denied scope', 1, runCli(['--debug', 'inspect', `${tokenRegistry.host}/secret/app:1`], { env: bob }));
    await run('password on the command line', 0, runCli(['--debug', 'login', htpasswd.host, '-u', 'bob', '-p', PASSWORD], { env: await basicEnv('argv', {}) }));

    const secrets = [PASSWORD, wrongPw, b64(`bob:${PASSWORD}`), b64(`bob:${wrongPw}`), ID_TOKEN, ...tokens.issued];
    expect(tokens.issued.length).toBeGreaterThan(3);
    for (const [label, res, expected] of runs) {
      expect(res.code, `${label}: ${res.stderr}`).toBe(expected);
      // --debug really logged the requests, so the check below is not vacuous.
      expect(res.stderr, label).toMatch(/debug: (GET|HEAD|POST|PUT) /);
      for (const s of secrets) {
        expect(res.stdout.includes(s), `${label}: stdout holds a secret`).toBe(false);
        expect(res.stderr.includes(s), `${label}: stderr holds a secret`).toBe(false);
      }
      expect(res.stderr + res.stdout, label).not.toMatch(/(Bearer|Basic) [A-Za-z0-9+/=._-]{8,}/);
    }
  });
});

describe('copy between two authenticated registries', () => {
  it('reads the source with config.json credentials and writes the destination with a credential helper', async () => {
    const helper = await makeCredentialHelper(join(work, 'copy-helper'), 'cnabcopy');
    await helper.set(tokenRegistry.host, 'bob', PASSWORD);
    const dir = join(work, 'copy-config');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({
      auths: { [htpasswd.host]: { auth: b64(`bob:${PASSWORD}`) } },
      credHelpers: { [tokenRegistry.host]: 'cnabcopy' },
    }));
    const env = { DOCKER_CONFIG: dir, PATH: pathWith(helper.binDir), ...NO_CONTAINERS_AUTH };
    const source = `${htpasswd.host}/acme/copysrc:1`;
    const push = await pushFixture(source, env);
    expect(push.code, push.stderr).toBe(0);

    tokens.requests.length = 0;
    const copy = await runCli(['--debug', 'copy', source, `${tokenRegistry.host}/acme/copied:1`], { env });
    expect(copy.code, copy.stderr).toBe(0);
    expect(await helper.calls()).toContainEqual({ action: 'get', serverURL: tokenRegistry.host });
    expect(tokens.requests.some((r) => r.user === 'bob' && r.granted && r.scopes.includes('repository:acme/copied:pull,push'))).toBe(true);
    for (const s of [PASSWORD, b64(`bob:${PASSWORD}`), ...tokens.issued]) expect(copy.stderr + copy.stdout).not.toContain(s);

    const pull = await runCli(['pull', `${tokenRegistry.host}/acme/copied:1`, '--bundle', join(work, 'copied.json'), '--relocation-map', join(work, 'copied-map.json')], { env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(push.stdout.trim());
    const map = await readJson(join(work, 'copied-map.json'));
    expect(Object.values(map).every((v) => String(v).startsWith(`${tokenRegistry.host}/acme/copied@sha256:`))).toBe(true);
  });
});
