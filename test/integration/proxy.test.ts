import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makePki, type TestPki } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js';
import { describeWithExternalAddress, externalAddress, startRegistry, type TestRegistry } from '../helpers/registry.js';

const address = externalAddress();
const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
const PASSWORD = 'pr0xy-pa55';
/** Proxy variables of the machine running the tests do not leak into the CLI under test. */
const NO_PROXY_ENV = { HTTP_PROXY: undefined, http_proxy: undefined, HTTPS_PROXY: undefined, https_proxy: undefined, NO_PROXY: undefined, no_proxy: undefined };

// Loopback is never proxied (as in Go, so Docker): the registries listen on a non-loopback address.
describeWithExternalAddress('HTTP_PROXY, HTTPS_PROXY and NO_PROXY', () => {
  let work: string;
  let pki: TestPki;
  let plain: TestRegistry;
  let tls: TestRegistry;
  let loopback: TestRegistry;
  let proxy: ForwardProxy;
  let dockerConfig: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-proxy-'));
    pki = await makePki(work, address!);
    [plain, tls, loopback, proxy] = await Promise.all([
      startRegistry({ bindAddress: address, htpasswd: { bob: PASSWORD } }),
      startRegistry({ bindAddress: address, htpasswd: { bob: PASSWORD }, tls: { certFile: pki.serverCert, keyFile: pki.serverKey } }),
      startRegistry(),
      startForwardProxy(),
    ]);
    dockerConfig = join(work, 'docker');
    await mkdir(dockerConfig, { recursive: true });
    const auth = Buffer.from(`bob:${PASSWORD}`).toString('base64');
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [plain.host]: { auth }, [tls.host]: { auth } } }));
  });
  afterAll(async () => {
    await Promise.all([plain?.stop(), tls?.stop(), loopback?.stop(), proxy?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });
  beforeEach(() => proxy.reset());

  const env = (vars: Record<string, string>) => ({ ...NO_PROXY_ENV, DOCKER_CONFIG: dockerConfig, REGISTRY_AUTH_FILE: undefined, XDG_RUNTIME_DIR: undefined, ...vars });
  const pushPull = async (host: string, vars: Record<string, string>, ...flags: string[]) => {
    const target = `${host}/acme/proxied:1`;
    const push = await runCli([...flags, 'push', join(fixtures, 'bundle.json'), '--target', target, '--images-from', `oci:${join(fixtures, 'images')}`], { env: env(vars) });
    expect(push.code, push.stderr).toBe(0);
    const pull = await runCli([...flags, 'pull', target, '--bundle', join(work, `${host}.json`), '--relocation-map', join(work, `${host}-map.json`)], { env: env(vars) });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(push.stdout.trim());
  };

  it('HTTP_PROXY carries a plain-HTTP (insecure) registry, credentials included, as absolute-URI requests', async () => {
    await pushPull(plain.host, { HTTP_PROXY: proxy.url }, '--insecure-registry', plain.host);
    const ours = proxy.requests.filter((r) => r.includes(`http://${plain.host}/v2/`));
    expect(ours.some((r) => r.startsWith(`PUT http://${plain.host}/v2/acme/proxied/manifests/`))).toBe(true);
    expect(ours.some((r) => r.startsWith(`GET http://${plain.host}/v2/acme/proxied/manifests/`))).toBe(true);
    expect(ours.some((r) => r.startsWith(`POST http://${plain.host}/v2/acme/proxied/blobs/uploads/`))).toBe(true);
  });

  it('HTTPS_PROXY tunnels to a TLS registry with CONNECT, its CA and credentials applying end to end', async () => {
    await pushPull(tls.host, { HTTPS_PROXY: proxy.url }, '--ca-file', pki.caCert);
    expect(proxy.connects.filter((c) => c === tls.host).length).toBeGreaterThan(0);
    expect(proxy.requests).toEqual([]);
  });

  it('HTTPS_PROXY carries an --insecure-registry TLS registry (certificate not verified) too', async () => {
    const res = await runCli(['--insecure-registry', tls.host, '--certs-dir', join(work, 'none'), 'inspect', `${tls.host}/acme/proxied:1`], { env: env({ HTTPS_PROXY: proxy.url }) });
    expect(res.code, res.stderr).toBe(0);
    expect(proxy.connects).toContain(tls.host);
    // The same without --insecure-registry: the unknown CA is refused through the proxy as well.
    const refused = await runCli(['--certs-dir', join(work, 'none'), 'inspect', `${tls.host}/acme/proxied:1`], { env: env({ HTTPS_PROXY: proxy.url }) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/certificate/i);
  });

  it('lower-case https_proxy works too', async () => {
    const res = await runCli(['--ca-file', pki.caCert, 'inspect', `${tls.host}/acme/proxied:1`], { env: env({ https_proxy: proxy.url }) });
    expect(res.code, res.stderr).toBe(0);
    expect(proxy.connects).toContain(tls.host);
  });

  it('NO_PROXY bypasses the proxy for the hosts it names', async () => {
    const vars = { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: `example.invalid,${address}` };
    await pushPull(tls.host, vars, '--ca-file', pki.caCert);
    await pushPull(plain.host, vars, '--insecure-registry', plain.host);
    expect(proxy.connects).toEqual([]);
    expect(proxy.requests).toEqual([]);
  });

  it('a proxy that cannot be reached is a one-line error, not a hang', async () => {
    const res = await runCli(['--ca-file', pki.caCert, 'inspect', `${tls.host}/acme/proxied:1`], { env: env({ HTTPS_PROXY: 'http://127.0.0.1:9' }) });
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/^cnab-oci: error: cannot reach registry/);
  });

  it('loopback registries are never proxied', async () => {
    await pushPull(loopback.host, { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url });
    expect(proxy.connects).toEqual([]);
    expect(proxy.requests).toEqual([]);
  });
});
