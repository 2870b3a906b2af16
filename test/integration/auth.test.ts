import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { staticCredentials } from '../../src/registry/credentials.js';
import { runCli } from '../helpers/cli.js';
import { pushImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const PASSWORD = 'pa55-w0rd-never-printed';

async function dockerConfig(dir: string, auths: Record<string, unknown>): Promise<Record<string, string>> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths }));
  return { DOCKER_CONFIG: dir };
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
    tokens = await startTokenServer({ alice: PASSWORD });
    registry = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundleFile: tokens.certFile } });
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-auth-'));
    const client = new RegistryClient({ credentials: staticCredentials({ [registry.host]: { username: 'alice', password: PASSWORD } }) });
    const src = client.repository(parseReference(`${registry.host}/src/app`));
    await src.tag(await pushImage(src), '1.0');
    await client.close();
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
