import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { makePki } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { pushImage } from '../helpers/images.js';
import { startQuirkProxy, type QuirkOptions, type QuirkProxy } from '../helpers/quirk-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const CNAB_CONFIG = 'application/vnd.cnab.config.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

let registry: TestRegistry;
let work: string;
const proxies: QuirkProxy[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'cnab-oci-quirks-'));
  const client = new RegistryClient();
  for (const [repo, format] of [['src/app', 'docker'], ['src/tool', 'oci']] as const) {
    const r = client.repository(parseReference(`${registry.host}/${repo}`));
    await r.tag(await pushImage(r, { format }), '1.0');
  }
  await client.close();
});
afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()));
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function quirky(options: QuirkOptions): Promise<QuirkProxy> {
  const p = await startQuirkProxy(registry.host, options);
  proxies.push(p);
  return p;
}

/** A bundle whose images live in the (quirky) registry itself, so push mounts them. */
async function bundleFor(host: string, name: string, dockerOnly = false): Promise<string> {
  const path = join(work, `${name}.json`);
  await writeFile(path, JSON.stringify({
    schemaVersion: 'v1.2.0', name, version: '0.1.0',
    invocationImages: [{ imageType: 'docker', image: `${host}/src/app:1.0` }],
    // An OCI image carries the OCI config type: a registry refusing that type cannot hold it.
    images: dockerOnly ? {} : { tool: { imageType: 'oci', image: `${host}/src/tool:1.0` } },
  }));
  return path;
}

/** No credentials at all (the registry behind the quirks is open), whatever the machine has. */
const env = { DOCKER_CONFIG: join(tmpdir(), 'cnab-oci-quirks-no-docker-config'), REGISTRY_AUTH_FILE: undefined, XDG_RUNTIME_DIR: undefined };

async function pushAndPull(host: string, name: string, dockerOnly = false): Promise<{ digest: string; stderr: string; json: Record<string, unknown> }> {
  const push = await runCli(['--json', 'push', await bundleFor(host, name, dockerOnly), '--target', `${host}/quirks/${name}:1`], { env });
  expect(push.code, push.stderr).toBe(0);
  const json = JSON.parse(push.stdout) as Record<string, unknown>;
  const pull = await runCli(['pull', `${host}/quirks/${name}:1`, '--bundle', join(work, `${name}.pulled.json`), '--relocation-map', join(work, `${name}.map.json`)], { env });
  expect(pull.code, pull.stderr).toBe(0);
  expect(pull.stdout.trim()).toBe(json.digest);
  const pulled = JSON.parse(await readFile(join(work, `${name}.pulled.json`), 'utf8')) as { name: string };
  expect(pulled.name).toBe(name);
  return { digest: json.digest as string, stderr: push.stderr, json };
}

/** Read straight from registry:2 with skopeo: the raw manifest and its digest. */
async function skopeoRaw(ref: string): Promise<{ doc: Record<string, any>; digest: string }> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/${ref}`], { encoding: 'buffer' });
  return { doc: JSON.parse(stdout.toString('utf8')), digest: `sha256:${createHash('sha256').update(stdout).digest('hex')}` };
}

/** The index, its config manifest, and a full copy by skopeo (every manifest and blob readable). */
async function checkWithSkopeo(name: string, indexType: string, configType: string, digest: string): Promise<void> {
  const index = await skopeoRaw(`quirks/${name}:1`);
  expect(index.digest).toBe(digest);
  // cnab-to-oci writes OCI indexes without a top-level mediaType.
  expect(index.doc.mediaType ?? OCI_INDEX).toBe(indexType);
  const configEntry = (index.doc.manifests as { digest: string; annotations?: Record<string, string> }[]).find((m) => m.annotations?.['io.cnab.manifest.type'] === 'config');
  expect(configEntry).toBeDefined();
  const config = await skopeoRaw(`quirks/${name}@${configEntry!.digest}`);
  expect(config.doc.config.mediaType).toBe(configType);
  // skopeo copies every manifest and blob (each verified), keeping the index byte for byte.
  const dir = join(work, `skopeo-${name}`);
  await run('skopeo', ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${registry.host}/quirks/${name}:1`, `dir:${dir}`]);
  expect(`sha256:${createHash('sha256').update(await readFile(join(dir, 'manifest.json'))).digest('hex')}`).toBe(digest);
}

// Each case has its own proxy (its own registry host): they run side by side.
describe.concurrent('registry quirks', () => {
  it('a registry refusing the CNAB config media type (400 MANIFEST_INVALID, as Quay) gets the OCI config type', async () => {
    const p = await quirky({ rejectConfigMediaTypes: [CNAB_CONFIG] });
    const res = await pushAndPull(p.host, 'quay');
    expect(res.stderr).toMatch(/refused the cnab config media type.*falling back to oci/);
    expect(res.json.configMediaType).toBe('oci');
    expect(p.log.some((e) => e.method === 'PUT' && e.status === 400)).toBe(true);
    await checkWithSkopeo('quay', OCI_INDEX, OCI_CONFIG, res.digest);
  });

  it('refusing the CNAB and OCI config types with 415 (as GCR) gets Docker\'s config type', async () => {
    const p = await quirky({ rejectConfigMediaTypes: [CNAB_CONFIG, OCI_CONFIG], rejectStatus: 415 });
    const res = await pushAndPull(p.host, 'gcr', true);
    expect(res.stderr).toMatch(/refused the cnab config media type.*falling back to oci/);
    expect(res.stderr).toMatch(/refused the oci config media type.*falling back to docker/);
    expect(res.json.configMediaType).toBe('docker');
    await checkWithSkopeo('gcr', OCI_INDEX, DOCKER_CONFIG, res.digest);
  });

  it('a registry refusing OCI indexes gets a Docker manifest list', async () => {
    const p = await quirky({ rejectOciIndex: true });
    const res = await pushAndPull(p.host, 'nexus');
    expect(res.stderr).toMatch(/refused the OCI index.*Docker manifest list/);
    expect(res.json.mediaType).toBe(DOCKER_LIST);
    await checkWithSkopeo('nexus', DOCKER_LIST, CNAB_CONFIG, res.digest);
  });

  it('both at once (config type and index refused): OCI config under a Docker manifest list', async () => {
    const p = await quirky({ rejectConfigMediaTypes: [CNAB_CONFIG], rejectOciIndex: true });
    const res = await pushAndPull(p.host, 'artifactory');
    expect(res.json.configMediaType).toBe('oci');
    expect(res.json.mediaType).toBe(DOCKER_LIST);
    await checkWithSkopeo('artifactory', DOCKER_LIST, OCI_CONFIG, res.digest);
  });

  it('a registry that does not create repositories on push (404 NAME_UNKNOWN, as ECR) is an error saying so', async () => {
    const p = await quirky({ existingRepositories: ['src/app', 'src/tool', 'quirks/ecr-made'] });
    const res = await runCli(['push', await bundleFor(p.host, 'ecr-new'), '--target', `${p.host}/quirks/ecr-new:1`], { env });
    expect(res.code).toBe(1);
    const errors = res.stderr.split('\n').filter((l) => l.startsWith('cnab-oci: error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`${p.host}/quirks/ecr-new`);
    expect(errors[0]).toMatch(/does not create repositories on push/);
    // Once the repository exists, the same registry takes the push.
    await pushAndPull(p.host, 'ecr-made');
  });

  it('answers without Docker-Content-Digest: digests are computed from the bytes', async () => {
    const p = await quirky({ digestHeader: 'strip' });
    const res = await pushAndPull(p.host, 'nodigest');
    await checkWithSkopeo('nodigest', OCI_INDEX, CNAB_CONFIG, res.digest);
  });

  it('answers with a wrong Docker-Content-Digest: the bytes win, push and pull still agree with the registry', async () => {
    const p = await quirky({ digestHeader: 'corrupt' });
    const res = await pushAndPull(p.host, 'baddigest');
    await checkWithSkopeo('baddigest', OCI_INDEX, CNAB_CONFIG, res.digest);
    const inspect = await runCli(['inspect', `${p.host}/quirks/baddigest:1`], { env });
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout).toContain(res.digest);
  });

  it('upload sessions on another origin get no credentials (the registry origin still does)', async () => {
    const password = 'cr0ss-0rigin-pa55';
    const p = await quirky({ crossOriginUploads: true, requireBasic: { username: 'bob', password } });
    const dir = join(work, 'cross-origin-config');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [p.host]: { auth: Buffer.from(`bob:${password}`).toString('base64') } } }));
    const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
    const res = await runCli(['push', join(fixtures, 'bundle.json'), '--target', `${p.host}/quirks/cross:1`, '--images-from', `oci:${join(fixtures, 'images')}`], {
      env: { ...env, DOCKER_CONFIG: dir },
    });
    expect(res.code, res.stderr).toBe(0);
    expect(p.uploadLog.filter((e) => e.method === 'PUT').length).toBeGreaterThan(0);
    expect(p.uploadLog.filter((e) => e.authorization)).toEqual([]);
    // The registry's own origin did get (and need) the credentials.
    expect(p.log.some((e) => e.status === 401)).toBe(true);
    expect(p.log.some((e) => e.method === 'PUT' && e.status === 201)).toBe(true);
  });

  it('an HTTPS registry whose upload sessions point at plain HTTP is refused before a byte or a credential goes there', async () => {
    const pkiDir = join(work, 'pki');
    await mkdir(pkiDir, { recursive: true });
    const pki = await makePki(pkiDir, '127.0.0.1');
    const password = 'd0wngrade-pa55';
    const p = await startQuirkProxy(registry.host, {
      crossOriginUploads: true,
      requireBasic: { username: 'eve', password },
      tls: { cert: await readFile(pki.serverCert, 'utf8'), key: await readFile(pki.serverKey, 'utf8') },
    });
    try {
      const dir = join(work, 'downgrade-config');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [p.host]: { auth: Buffer.from(`eve:${password}`).toString('base64') } } }));
      const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
      const res = await runCli(['--ca-file', pki.caCert, 'push', join(fixtures, 'bundle.json'), '--target', `${p.host}/quirks/downgrade:1`, '--images-from', `oci:${join(fixtures, 'images')}`], {
        env: { ...env, DOCKER_CONFIG: dir },
      });
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toMatch(/plain-HTTP location .* for an HTTPS registry; refused/);
      expect(res.stderr).not.toContain(password);
      // The HTTPS origin was used (and asked for credentials); the plain-HTTP one never heard from us.
      expect(p.log.some((e) => e.method === 'POST' && e.path.endsWith('/blobs/uploads/'))).toBe(true);
      expect(p.uploadLog).toEqual([]);
    } finally {
      await p.stop();
    }
  });

  for (const answer of [202, 404] as const) {
    it(`a registry answering a cross-repository mount with ${answer} gets the blobs uploaded`, async () => {
      const p = await quirky({ mountAnswer: answer });
      const res = await pushAndPull(p.host, `nomount${answer}`);
      const stats = res.json.stats as { mounts: number; objectsCopied: number };
      expect(stats.mounts).toBe(0);
      expect(stats.objectsCopied).toBeGreaterThan(0);
      expect(p.log.some((e) => e.method === 'POST' && e.path.endsWith('/blobs/uploads/') && e.status === answer)).toBe(true);
    });
  }
});
