import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, type TestPki } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { describeWithExternalAddress, externalAddress, startRegistry, type TestRegistry } from '../helpers/registry.js';

const address = externalAddress();
const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');

// TLS is verified only off loopback (Docker, and we, trust loopback registries blindly).
describeWithExternalAddress('registry behind TLS with a private CA', () => {
  let work: string;
  let pki: TestPki;
  let registry: TestRegistry;
  let mtls: TestRegistry;
  const env = () => ({ DOCKER_CONFIG: join(work, 'docker') });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-tls-'));
    pki = await makePki(work, address!);
    [registry, mtls] = await Promise.all([
      startRegistry({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey }, bindAddress: address }),
      startRegistry({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.caCert }, bindAddress: address }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([registry?.stop(), mtls?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  const push = (target: string, ...flags: string[]) =>
    runCli([...flags, 'push', join(fixtures, 'bundle.json'), '--target', target, '--images-from', `oci:${join(fixtures, 'images')}`], { env: env() });

  it('refuses an unknown CA with a hint, and never falls back to plain HTTP', async () => {
    const res = await push(`${registry.host}/acme/hello:1`, '--certs-dir', join(work, 'empty'));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot reach registry .* over HTTPS: .*certificate/i);
    expect(res.stderr).toContain('--insecure-registry');
    expect(res.stderr).not.toMatch(/HTTP \(/);
  });

  it('trusts the CA given with --ca-file', async () => {
    const res = await push(`${registry.host}/acme/hello:1`, '--ca-file', pki.caCert, '--certs-dir', join(work, 'empty'));
    expect(res.code, res.stderr).toBe(0);
  });

  it('trusts a CA in the Docker-style certs directory', async () => {
    const certsDir = join(work, 'certs.d');
    await mkdir(join(certsDir, registry.host), { recursive: true });
    await copyFile(pki.caCert, join(certsDir, registry.host, 'ca.crt'));
    const res = await runCli(['--certs-dir', certsDir, 'inspect', `${registry.host}/acme/hello:1`], { env: env() });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('bundle   hello 0.1.0');
  });

  it('trusts a CA in $DOCKER_CONFIG/certs.d, as the Docker CLI does', async () => {
    const dockerDir = join(work, 'docker-with-certs');
    const args = ['--certs-dir', join(work, 'empty'), 'inspect', `${registry.host}/acme/hello:1`];
    const before = await runCli(args, { env: { DOCKER_CONFIG: dockerDir } });
    expect(before.code).toBe(1);
    await mkdir(join(dockerDir, 'certs.d', registry.host), { recursive: true });
    await copyFile(pki.caCert, join(dockerDir, 'certs.d', registry.host, 'ca.crt'));
    const res = await runCli(args, { env: { DOCKER_CONFIG: dockerDir } });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('bundle   hello 0.1.0');
  });

  it('accepts an unverified certificate for --insecure-registry', async () => {
    const res = await runCli(['--insecure-registry', registry.host, '--certs-dir', join(work, 'empty'), 'inspect', `${registry.host}/acme/hello:1`], { env: env() });
    expect(res.code, res.stderr).toBe(0);
  });

  it('presents the client certificate from the certs directory to a registry that requires one', async () => {
    const certsDir = join(work, 'mtls.d');
    const dir = join(certsDir, mtls.host);
    await mkdir(dir, { recursive: true });
    await copyFile(pki.caCert, join(dir, 'ca.crt'));
    const without = await push(`${mtls.host}/acme/hello:1`, '--certs-dir', join(work, 'certs.d-without-client'), '--ca-file', pki.caCert);
    expect(without.code).toBe(1);
    await copyFile(pki.clientCert, join(dir, 'client.cert'));
    await copyFile(pki.clientKey, join(dir, 'client.key'));
    const res = await push(`${mtls.host}/acme/hello:1`, '--certs-dir', certsDir);
    expect(res.code, res.stderr).toBe(0);
  });
});
