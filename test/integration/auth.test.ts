import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { staticCredentials } from '../../src/registry/credentials.js';
import { makePki } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { makeCredentialHelper, pathWith } from '../helpers/credential-helper.js';
import { pushImage } from '../helpers/images.js';
import { describeWithExternalAddress, externalAddress, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const PASSWORD = 'pa55-w0rd-never-printed';
const ID_TOKEN = 'identity-token-0f3c9a-never-printed';
const ADMIN_PASSWORD = 'adm1n-pa55-never-printed';
/** No containers auth.json from the machine running the tests. */
const NO_CONTAINERS_AUTH = { REGISTRY_AUTH_FILE: undefined, XDG_RUNTIME_DIR: undefined };
const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');

async function dockerConfig(dir: string, auths: Record<string, unknown>): Promise<Record<string, string | undefined>> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths }));
  return { DOCKER_CONFIG: dir, ...NO_CONTAINERS_AUTH };
}

async function pushImageAs(host: string, repo: string, user: string, password: string): Promise<void> {
  const client = new RegistryClient({ credentials: staticCredentials({ [host]: { username: user, password } }) });
  const r = client.repository(parseReference(`${host}/${repo}`));
  await r.tag(await pushImage(r), '1.0');
  await client.close();
}

async function bundleFile(dir: string, name: string, image: string): Promise<string> {
  const path = join(dir, `${name}.bundle.json`);
  await writeFile(path, JSON.stringify({ schemaVersion: 'v1.2.0', name, version: '0.1.0', invocationImages: [{ imageType: 'oci', image }] }));
  return path;
}

function basic(user: string, password: string): { auth: string } {
  return { auth: Buffer.from(`${user}:${password}`).toString('base64') };
}

describe('bearer-token registry', () => {
  let tokens: TokenServer;
  let registry: TestRegistry;
  let work: string;
  let bundlePath: string;

  beforeAll(async () => {
    tokens = await startTokenServer({ alice: PASSWORD, admin: ADMIN_PASSWORD }, { carol: ID_TOKEN }, { denyPull: { alice: ['secret/app'] } });
    registry = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundleFile: tokens.certFile } });
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-auth-'));
    await pushImageAs(registry.host, 'src/app', 'alice', PASSWORD);
    await pushImageAs(registry.host, 'secret/app', 'admin', ADMIN_PASSWORD);
    bundlePath = join(work, 'bundle.json');
    await writeFile(bundlePath, JSON.stringify({
      schemaVersion: 'v1.2.0', name: 'tok', version: '0.1.0',
      invocationImages: [{ imageType: 'oci', image: `${registry.host}/src/app:1.0` }],
    }));
  });
  afterAll(async () => {
    await registry?.stop();
    await tokens?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('exchanges config.json credentials for a push token, and mounts within the registry', async () => {
    const env = await dockerConfig(join(work, 'alice'), { [registry.host]: basic('alice', PASSWORD) });
    tokens.requests.length = 0;
    const res = await runCli(['--json', '--debug', 'push', bundlePath, '--target', `${registry.host}/acme/tok:0.1.0`], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).stats.mounts).toBeGreaterThan(0);
    expect(tokens.requests.some((r) => r.user === 'alice' && r.scopes.includes('repository:acme/tok:pull,push'))).toBe(true);
    // The mount asked for read access to the source repository in the same token.
    expect(tokens.requests.some((r) => r.scopes.includes('repository:src/app:pull') && r.scopes.includes('repository:acme/tok:pull,push'))).toBe(true);
    expect(res.stderr + res.stdout).not.toContain(PASSWORD);
    expect(res.stderr + res.stdout).not.toContain(basic('alice', PASSWORD).auth);
  });

  it('pulls with an anonymous token and never asks for push on a read-only command', async () => {
    const env = await dockerConfig(join(work, 'anon'), {});
    tokens.requests.length = 0;
    const res = await runCli(['pull', `${registry.host}/acme/tok:0.1.0`, '--bundle', join(work, 'p.json'), '--relocation-map', join(work, 'm.json')], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(tokens.requests.length).toBeGreaterThan(0);
    expect(tokens.requests.every((r) => r.user === undefined)).toBe(true);
    expect(tokens.requests.flatMap((r) => r.scopes).some((s) => s.includes('push'))).toBe(false);
  });

  it('a wrong password is one clear line naming the registry, without the password, even with --debug', async () => {
    const env = await dockerConfig(join(work, 'wrong'), { [registry.host]: basic('alice', 'not-the-password') });
    const res = await runCli(['--debug', 'pull', `${registry.host}/acme/tok:0.1.0`, '--bundle', join(work, 'x.json')], { env });
    expect(res.code).toBe(1);
    const errors = res.stderr.split('\n').filter((l) => l.startsWith('cnab-oci: error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(registry.host);
    expect(res.stderr).not.toContain('not-the-password');
    expect(res.stderr).not.toContain(basic('alice', 'not-the-password').auth);
  });

  it('an identity token in config.json is exchanged with a POST refresh-token grant, never a GET', async () => {
    const env = await dockerConfig(join(work, 'carol'), { [registry.host]: { identitytoken: ID_TOKEN } });
    tokens.requests.length = 0;
    const res = await runCli(['--json', 'push', bundlePath, '--target', `${registry.host}/carol/tok:0.1.0`], { env });
    expect(res.code, res.stderr).toBe(0);
    const posts = tokens.requests.filter((r) => r.method === 'POST');
    expect(posts.some((r) => r.user === 'carol' && r.granted && r.scopes.includes('repository:carol/tok:pull,push'))).toBe(true);
    expect(tokens.requests.filter((r) => r.method === 'GET' && r.user !== undefined)).toEqual([]);
    const pull = await runCli(['pull', `${registry.host}/carol/tok:0.1.0`, '--bundle', join(work, 'carol.json'), '--relocation-map', join(work, 'carol-map.json')], { env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(JSON.parse(res.stdout).digest);
  });

  it('a registrytoken in config.json is sent as the bearer token itself; the token service is not asked', async () => {
    const url = new URL(tokens.realm);
    url.searchParams.set('service', tokens.service);
    url.searchParams.set('scope', 'repository:acme/tok:pull');
    const answer = await fetch(url, { headers: { authorization: `Basic ${basic('alice', PASSWORD).auth}` } });
    const { token } = (await answer.json()) as { token: string };
    const env = await dockerConfig(join(work, 'regtoken'), { [registry.host]: { registrytoken: token } });
    tokens.requests.length = 0;
    const res = await runCli(['--debug', 'pull', `${registry.host}/acme/tok:0.1.0`, '--bundle', join(work, 'rt.json'), '--relocation-map', join(work, 'rt-map.json')], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(tokens.requests).toEqual([]);
    expect(res.stderr + res.stdout).not.toContain(token);
  });

  it('a credential helper answering Username "<token>" gives an identity token (refresh-token POST)', async () => {
    const helper = await makeCredentialHelper(join(work, 'id-helper'), 'cnabidentity');
    await helper.set(registry.host, '<token>', ID_TOKEN);
    const dir = join(work, 'id-helper-config');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'cnabidentity' } }));
    tokens.requests.length = 0;
    const res = await runCli(['--debug', 'push', bundlePath, '--target', `${registry.host}/carol/helper:0.1.0`], { env: { DOCKER_CONFIG: dir, PATH: pathWith(helper.binDir), ...NO_CONTAINERS_AUTH } });
    expect(res.code, res.stderr).toBe(0);
    expect(tokens.requests.some((r) => r.method === 'POST' && r.user === 'carol' && r.scopes.includes('repository:carol/helper:pull,push'))).toBe(true);
    expect(res.stderr + res.stdout).not.toContain(ID_TOKEN);
  });

  it('a scope the token service will not grant is one error naming registry and scope, after one fresh token, not a loop', async () => {
    const env = await dockerConfig(join(work, 'alice-denied'), { [registry.host]: basic('alice', PASSWORD) });
    tokens.requests.length = 0;
    const res = await runCli(['--debug', 'inspect', `${registry.host}/secret/app:1.0`], { env });
    expect(res.code).toBe(1);
    const errors = res.stderr.split('\n').filter((l) => l.startsWith('cnab-oci: error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(registry.host);
    expect(errors[0]).toContain('repository:secret/app:pull');
    expect(errors[0]).toMatch(/denied/);
    const asked = tokens.requests.filter((r) => r.scopes.includes('repository:secret/app:pull'));
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.length).toBeLessThanOrEqual(2);
    expect(res.stderr).not.toContain(PASSWORD);
    for (const t of tokens.issued) expect(res.stderr).not.toContain(t);
    // The same user, another repository: fine (the refusal was about that scope only).
    const ok = await runCli(['inspect', `${registry.host}/src/app:1.0`], { env });
    expect(ok.code).toBe(1); // not a bundle, but read: the error is about content, not access
    expect(ok.stderr).not.toMatch(/denied|authentication/);
  });

  it('anonymous push is refused with an access error', async () => {
    const env = await dockerConfig(join(work, 'anon2'), {});
    const res = await runCli(['push', bundlePath, '--target', `${registry.host}/acme/anon:0.1.0`], { env });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cnab-oci: error: .*(denied|authentication)/);
  });
});

describe('htpasswd registry through the CLI', () => {
  let registry: TestRegistry;
  let work: string;
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: { bob: PASSWORD } });
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-basic-'));
  });
  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes the fixture bundle with basic auth from config.json and pulls it back', async () => {
    const env = await dockerConfig(join(work, 'bob'), { [`https://${registry.host}/v1/`]: basic('bob', PASSWORD) });
    const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
    const target = `${registry.host}/acme/hello:0.1.0`;
    const push = await runCli(['push', join(fixtures, 'bundle.json'), '--target', target, '--images-from', `oci:${join(fixtures, 'images')}`], { env });
    expect(push.code, push.stderr).toBe(0);
    const pull = await runCli(['pull', target, '--bundle', join(work, 'b.json'), '--relocation-map', join(work, 'm.json')], { env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(push.stdout.trim());
  });
});

// Independent cases (own repositories, users and assertions on their own scopes) run side by side.
describe.concurrent('token service that only does GET and grants one repository per token', () => {
  let tokens: TokenServer;
  let registry: TestRegistry;
  let work: string;

  beforeAll(async () => {
    tokens = await startTokenServer({ alice: PASSWORD }, { carol: ID_TOKEN }, { postStatus: 405, oneRepositoryPerToken: true });
    registry = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundleFile: tokens.certFile } });
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-auth-get-'));
    await pushImageAs(registry.host, 'src/app', 'alice', PASSWORD);
  });
  afterAll(async () => {
    await registry?.stop();
    await tokens?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('asks again with GET when the refresh-token POST is not supported', async () => {
    const env = await dockerConfig(join(work, 'carol'), { [registry.host]: { identitytoken: ID_TOKEN } });
    const bundle = await bundleFile(work, 'idget', `${registry.host}/src/app:1.0`);
    const res = await runCli(['push', bundle, '--target', `${registry.host}/carol/app:0.1.0`], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(tokens.requests.some((r) => r.method === 'POST' && r.scopes.length === 0 && !r.granted)).toBe(true);
    expect(tokens.requests.some((r) => r.method === 'GET' && r.user === 'carol' && r.scopes.includes('repository:carol/app:pull,push'))).toBe(true);
  });

  it('a refused cross-repository mount (401) falls back to uploading the blobs', async () => {
    const env = await dockerConfig(join(work, 'alice'), { [registry.host]: basic('alice', PASSWORD) });
    const bundle = await bundleFile(work, 'nomount', `${registry.host}/src/app:1.0`);
    const res = await runCli(['--json', 'push', bundle, '--target', `${registry.host}/acme/nomount:0.1.0`], { env });
    expect(res.code, res.stderr).toBe(0);
    const stats = JSON.parse(res.stdout).stats;
    expect(stats.mounts).toBe(0);
    expect(stats.objectsCopied).toBeGreaterThan(0);
    // The mount was asked for (pull on the source and push on the target in one token) and refused.
    expect(tokens.requests.some((r) => r.scopes.includes('repository:src/app:pull') && r.scopes.includes('repository:acme/nomount:pull,push'))).toBe(true);
    const pull = await runCli(['pull', `${registry.host}/acme/nomount:0.1.0`, '--bundle', join(work, 'nm.json'), '--relocation-map', join(work, 'nm-map.json')], { env });
    expect(pull.code, pull.stderr).toBe(0);
  });
});

const address = externalAddress();

// A hostile (or misconfigured) HTTPS registry naming a plain-HTTP token realm gets nothing.
describeWithExternalAddress('token realm of an HTTPS registry', () => {
  let tokens: TokenServer;
  let registry: TestRegistry;
  let httpsTokens: TokenServer;
  let httpsRealmRegistry: TestRegistry;
  let work: string;
  let ca: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-realm-'));
    const pki = await makePki(work, address!);
    ca = pki.caCert;
    const tls = { certFile: pki.serverCert, keyFile: pki.serverKey };
    [tokens, httpsTokens] = await Promise.all([
      startTokenServer({ alice: PASSWORD }),
      startTokenServer({ alice: PASSWORD }, {}, { tls, bindAddress: address }),
    ]);
    const tokenAuth = (t: TokenServer) => ({ realm: t.realm, service: t.service, issuer: t.issuer, rootCertBundleFile: t.certFile });
    [registry, httpsRealmRegistry] = await Promise.all([
      startRegistry({ tls, bindAddress: address, token: tokenAuth(tokens) }),
      startRegistry({ tls, bindAddress: address, token: tokenAuth(httpsTokens) }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([registry?.stop(), httpsRealmRegistry?.stop()]);
    await Promise.all([tokens?.stop(), httpsTokens?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('an HTTPS realm (verified with the same CA) is used as usual', async () => {
    const env = await dockerConfig(join(work, 'alice-https'), { [httpsRealmRegistry.host]: basic('alice', PASSWORD) });
    const push = await runCli(['--ca-file', ca, 'push', join(fixtures, 'bundle.json'), '--target', `${httpsRealmRegistry.host}/acme/hello:1`, '--images-from', `oci:${join(fixtures, 'images')}`], { env });
    expect(push.code, push.stderr).toBe(0);
    expect(httpsTokens.realm).toMatch(/^https:/);
    expect(httpsTokens.requests.some((r) => r.user === 'alice' && r.granted && r.scopes.includes('repository:acme/hello:pull,push'))).toBe(true);
  });

  it('must be HTTPS: a plain-HTTP realm is refused with a clear error and the token service hears nothing', async () => {
    const env = await dockerConfig(join(work, 'alice'), { [registry.host]: basic('alice', PASSWORD) });
    tokens.requests.length = 0;
    const push = await runCli(['--ca-file', ca, '--debug', 'push', join(fixtures, 'bundle.json'), '--target', `${registry.host}/acme/hello:1`, '--images-from', `oci:${join(fixtures, 'images')}`], { env });
    expect(push.code).toBe(1);
    expect(push.stderr).toMatch(new RegExp(`cnab-oci: error: ${registry.host.replace(/\./g, '\\.')}: refusing token realm http://127\\.0\\.0\\.1:\\d+`));
    const login = await runCli(['--ca-file', ca, 'login', registry.host, '-u', 'alice', '--password-stdin'], { env, input: PASSWORD });
    expect(login.code).toBe(1);
    expect(login.stderr).toMatch(/refusing token realm/);
    expect(tokens.requests).toEqual([]);
    expect(push.stderr + login.stderr).not.toContain(PASSWORD);
  });
});

describe.concurrent('credential helpers and containers auth.json against an htpasswd registry', () => {
  let registry: TestRegistry;
  let work: string;
  let smallBundle: string;
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: { bob: PASSWORD } });
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-helpers-'));
    await pushImageAs(registry.host, 'src/app', 'bob', PASSWORD);
    smallBundle = await bundleFile(work, 'small', `${registry.host}/src/app:1.0`);
  });
  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A small bundle whose image is in the registry already (mounted): the tests are about credentials. */
  const pushFixture = (target: string, env: Record<string, string | undefined>) => runCli(['push', smallBundle, '--target', target], { env });

  async function configDir(name: string, config: unknown): Promise<string> {
    const dir = join(work, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  }

  it('without credentials the push is refused (the control for the tests below)', async () => {
    const res = await pushFixture(`${registry.host}/acme/none:1`, { DOCKER_CONFIG: await configDir('none', {}), ...NO_CONTAINERS_AUTH });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cnab-oci: error: .*127\.0\.0\.1/);
  });

  it('credsStore: docker-credential-<name> get, with the registry host', async () => {
    const helper = await makeCredentialHelper(join(work, 'store'), 'cnabstore');
    await helper.set(registry.host, 'bob', PASSWORD);
    const env = { DOCKER_CONFIG: await configDir('store-config', { credsStore: 'cnabstore' }), PATH: pathWith(helper.binDir), ...NO_CONTAINERS_AUTH };
    const res = await pushFixture(`${registry.host}/acme/store:1`, env);
    expect(res.code, res.stderr).toBe(0);
    expect(await helper.calls()).toContainEqual({ action: 'get', serverURL: registry.host });
    const pull = await runCli(['pull', `${registry.host}/acme/store:1`, '--bundle', join(work, 's.json'), '--relocation-map', join(work, 's-map.json')], { env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(res.stderr + res.stdout + pull.stderr + pull.stdout).not.toContain(PASSWORD);
  });

  it('credHelpers[host] wins over credsStore', async () => {
    const per = await makeCredentialHelper(join(work, 'per'), 'cnabper');
    const other = await makeCredentialHelper(join(work, 'other'), 'cnabother');
    await per.set(registry.host, 'bob', PASSWORD);
    await other.set(registry.host, 'bob', 'wrong-password');
    const config = { credsStore: 'cnabother', credHelpers: { [registry.host]: 'cnabper' } };
    const env = { DOCKER_CONFIG: await configDir('per-config', config), PATH: pathWith(per.binDir, other.binDir), ...NO_CONTAINERS_AUTH };
    const res = await pushFixture(`${registry.host}/acme/per:1`, env);
    expect(res.code, res.stderr).toBe(0);
    expect(await per.calls()).toContainEqual({ action: 'get', serverURL: registry.host });
    expect(await other.calls()).toEqual([]);
  });

  it('a helper that is not installed is a clear error naming it', async () => {
    const env = { DOCKER_CONFIG: await configDir('missing', { credsStore: 'cnab-not-installed' }), ...NO_CONTAINERS_AUTH };
    const res = await pushFixture(`${registry.host}/acme/missing:1`, env);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('docker-credential-cnab-not-installed not found');
  });

  it('containers auth.json from REGISTRY_AUTH_FILE, and from $XDG_RUNTIME_DIR/containers, when Docker has nothing', async () => {
    const authFile = join(work, 'podman', 'auth.json');
    await mkdir(join(work, 'podman'), { recursive: true });
    await writeFile(authFile, JSON.stringify({ auths: { [registry.host]: basic('bob', PASSWORD) } }));
    const empty = await configDir('empty', {});
    const push = await pushFixture(`${registry.host}/acme/podman:1`, { DOCKER_CONFIG: empty, REGISTRY_AUTH_FILE: authFile, XDG_RUNTIME_DIR: undefined });
    expect(push.code, push.stderr).toBe(0);

    const runtime = join(work, 'runtime');
    await mkdir(join(runtime, 'containers'), { recursive: true });
    await writeFile(join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { [registry.host]: basic('bob', PASSWORD) } }));
    const pull = await runCli(['pull', `${registry.host}/acme/podman:1`, '--bundle', join(work, 'pd.json'), '--relocation-map', join(work, 'pd-map.json')], {
      env: { DOCKER_CONFIG: empty, REGISTRY_AUTH_FILE: undefined, XDG_RUNTIME_DIR: runtime },
    });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(push.stdout.trim());
  });
});
