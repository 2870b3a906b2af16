import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult, CLI } from '../helpers/cli.js';
import { call, startCnrServer, type CnrServer } from '../helpers/cnr-server.js';
import { makeChart, makePackage, makeTarball, pushBody } from '../helpers/cnr-packages.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/**
 * `cnab-oci cnr migrate` from the reference server's filesystem store and from live CNR
 * servers into both storages `cnr serve` serves (an OCI layout, a registry:2 prefix), checked
 * by serving the destination and comparing its answers with the source's.
 */

const run = promisify(execFile);
const REFERENCE = join(import.meta.dirname, '..', 'fixtures', 'cnr', 'reference-store');
const REFERENCE_STORE = join(REFERENCE, 'cnr');

type View = { release: string; mediaType: string; content: { digest: string; size: number } };
type Channel = { name: string; current: string; releases: string[] };
type Entry = { name: string; releases: string[]; default: string; manifests: string[] };
interface Answers {
  list: Entry[];
  packages: Record<string, { all: View[]; channels: Channel[] }>;
}

const referenceList = JSON.parse(readFileSync(join(REFERENCE, 'answers', 'list.json'), 'utf8')) as Entry[];
const referencePackages = JSON.parse(readFileSync(join(REFERENCE, 'answers', 'packages.json'), 'utf8')) as Answers['packages'];
const referenceReleases = Object.values(referencePackages).flatMap((p) => p.all);
const referenceChannels = Object.values(referencePackages).flatMap((p) => p.channels);

/** What a CNR server answers for the list, and for each listed package its all-view and channels (under /cnr, as the reference answers were taken). */
async function answersOf(url: string): Promise<Answers> {
  const base = `${url}/cnr/api/v1/packages`;
  const get = async (path: string): Promise<unknown> => {
    const res = await call(`${base}${path}`);
    expect(res.status, `GET ${path}: ${res.body.toString()}`).toBe(200);
    return res.json;
  };
  const list = (await get('')) as Entry[];
  const packages: Answers['packages'] = {};
  for (const e of list) packages[e.name] = { all: (await get(`/${e.name}`)) as View[], channels: (await get(`/${e.name}/channels`)) as Channel[] };
  return { list, packages };
}

/** Serve a storage with `cnr serve` and take its answers. */
async function servedAnswers(storage: string): Promise<Answers> {
  const server = await startCnrServer({ storage, args: ['--log-format', 'none'] });
  try {
    return await answersOf(server.url);
  } finally {
    await server.stop();
  }
}

function expectOk(res: CliResult, what: string): void {
  expect(res.code, `${what}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`).toBe(0);
}

/** Progress lines of one kind (`copied`, `present`, `skipped`, ...): `ns/name@release (type)`. */
function progress(text: string, kind: string): string[] {
  const re = new RegExp(`^${kind}\\s+(\\S+@\\S+ \\([^,)]+)`, 'gm');
  return [...text.matchAll(re)].map((m) => `${m[1]})`).sort();
}

let work: string;
let registry: TestRegistry;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cnab-oci-cnr-migrate-'));
  registry = await startRegistry();
});

afterAll(async () => {
  await registry?.stop();
  if (work) {
    await run('chmod', ['-R', 'u+w', work]).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
});

const DESTINATIONS = ['layout', 'registry'] as const;
const destination = (kind: (typeof DESTINATIONS)[number], name: string): string => (kind === 'layout' ? `oci:${join(work, name)}` : `${registry.host}/${name}`);

describe.each(DESTINATIONS)('the reference store migrated into the %s storage', (kind) => {
  it('copies every release and channel; cnr serve over it answers as the reference did', async () => {
    const dst = destination(kind, `reference-${kind}`);
    const res = await runCli(['--json', 'cnr', 'migrate', `appr-store:${REFERENCE_STORE}`, dst]);
    expectOk(res, 'migrate');
    expect(JSON.parse(res.stdout)).toMatchObject({
      dryRun: false,
      packages: referenceList.length,
      releases: referenceReleases.length,
      present: 0,
      bytes: referenceReleases.reduce((n, v) => n + v.content.size, 0),
      channels: referenceChannels.length,
      skipped: 0,
      failed: 0,
    });
    // With --json the progress lines go to stderr: one per release copied.
    expect(progress(res.stderr, 'copied')).toEqual(referenceReleases.map((v) => `${(v as unknown as { package: string }).package}@${v.release} (${v.mediaType.split('.')[3]})`).sort());

    const served = await servedAnswers(dst);
    expect(served.list).toEqual(referenceList);
    expect(served.packages).toEqual(referencePackages);

    // Run again: everything is there already.
    const again = await runCli(['--json', 'cnr', 'migrate', `appr-store:${REFERENCE_STORE}`, dst]);
    expectOk(again, 'second migrate');
    expect(JSON.parse(again.stdout)).toMatchObject({ releases: 0, present: referenceReleases.length, channels: 0, bytes: 0, skipped: 0, failed: 0 });
  });
});

describe('a live CNR server migrated to another storage', () => {
  let source: CnrServer;
  let chart: Buffer;

  beforeAll(async () => {
    source = await startCnrServer({ storage: `oci:${join(work, 'live-source')}`, args: ['--log-format', 'none'] });
    const api = `${source.url}/api/v1/packages`;
    const push = async (pkg: string, blob: Buffer, release: string, mediaType: string, metadata?: Record<string, unknown>) => {
      const res = await call(`${api}/${pkg}`, { method: 'POST', body: pushBody(blob, release, mediaType, metadata ? { metadata } : {}) });
      expect(res.status, res.body.toString()).toBe(200);
    };
    const channel = async (pkg: string, name: string, release: string) => {
      expect((await call(`${api}/${pkg}/channels/${name}/${release}`, { method: 'POST' })).status).toBe(200);
    };
    chart = await makeChart('demo', '1.2.3');
    await push('acme/tool', await makePackage('tool', 'a'), '1.0.0', 'kpm', { maintainers: ['ops@example.com'] });
    await push('acme/tool', await makePackage('tool', 'b'), '1.0.0', 'docker-compose');
    await push('acme/tool', await makePackage('tool', 'c'), '1.1.0', 'kpm');
    await push('acme/tool', await makePackage('tool', 'd'), '2.0.0-rc.1', 'kpm', { beta: true, nested: { level: 2 } });
    await push('charts/demo', chart, '1.2.3', 'helm');
    await push('charts/demo', await makeChart('demo', '1.3.0'), '1.3.0', 'helm');
    await push('charts/demo', await makePackage('demo', 'kpm'), '1.3.0', 'kpm');
    await push('other/thing', await makePackage('thing', 'x'), '0.1.0', 'kpm', { tier: 1 });
    await channel('acme/tool', 'stable', '1.0.0');
    await channel('acme/tool', 'stable', '1.1.0');
    await channel('acme/tool', 'beta', '2.0.0-rc.1');
    await channel('charts/demo', 'stable', '1.2.3');
  });

  afterAll(async () => {
    await source?.stop();
  });

  it.each(DESTINATIONS)('into the %s storage: it answers identically, and a real chart is a Helm OCI chart', async (kind) => {
    const dst = destination(kind, `live-${kind}`);
    const res = await runCli(['cnr', 'migrate', `127.0.0.1:${source.port}`, dst, '--concurrency', '2']);
    expectOk(res, 'migrate from a live server');
    expect(progress(res.stdout, 'copied')).toHaveLength(8);
    expect(res.stdout).toMatch(/^migrated 3 package\(s\) from 127\.0\.0\.1:\d+ to .*: 8 release\(s\) copied \(.*\), 3 channel\(s\) set, 0 already present, 0 skipped, 0 failed$/m);

    const expected = await answersOf(source.url);
    expect(expected.list).toHaveLength(3);
    expect(await servedAnswers(dst)).toEqual(expected);

    // Helm's tag of the chart release holds Helm's OCI shape, its layer the chart's bytes.
    const manifest = await ociManifest(dst, 'charts/demo', '1.2.3');
    expect(manifest.config.mediaType).toBe('application/vnd.cncf.helm.config.v1+json');
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0]!.mediaType).toBe('application/vnd.cncf.helm.chart.content.v1.tar+gzip');
    expect((await ociBlob(dst, 'charts/demo', manifest.layers[0]!.digest)).equals(chart)).toBe(true);
    const config = JSON.parse((await ociBlob(dst, 'charts/demo', manifest.config.digest)).toString()) as Record<string, unknown>;
    expect(config).toMatchObject({ name: 'demo', version: '1.2.3' });
  });
});

/** The manifest a tag names, read from the storage itself (not through cnr serve). */
async function ociManifest(storage: string, pkg: string, tag: string): Promise<{ config: { mediaType: string; digest: string }; layers: { mediaType: string; digest: string }[] }> {
  if (storage.startsWith('oci:')) {
    const dir = join(storage.slice(4), ...pkg.split('/'));
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
    expect(entry, `tag ${tag} in ${JSON.stringify(index)}`).toBeDefined();
    return JSON.parse((await ociBlob(storage, pkg, entry!.digest)).toString());
  }
  const [host, ...prefix] = storage.split('/');
  const res = await request(`http://${host}/v2/${[...prefix, pkg].join('/')}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' } });
  const text = await res.body.text();
  expect(res.statusCode, text).toBe(200);
  return JSON.parse(text);
}

async function ociBlob(storage: string, pkg: string, digest: string): Promise<Buffer> {
  if (storage.startsWith('oci:')) return readFile(join(storage.slice(4), ...pkg.split('/'), 'blobs', 'sha256', digest.slice('sha256:'.length)));
  const [host, ...prefix] = storage.split('/');
  const res = await request(`http://${host}/v2/${[...prefix, pkg].join('/')}/blobs/${digest}`);
  expect(res.statusCode).toBe(200);
  return Buffer.from(await res.body.arrayBuffer());
}

describe('a migration killed with SIGKILL, then run again', () => {
  const PACKAGES = ['bulk/alpha', 'bulk/beta', 'bulk/gamma'];
  const RELEASES_EACH = 10;
  const TOTAL = PACKAGES.length * RELEASES_EACH;
  let source: CnrServer;

  beforeAll(async () => {
    source = await startCnrServer({ storage: `oci:${join(work, 'bulk-source')}`, args: ['--log-format', 'none'] });
    for (const pkg of PACKAGES) {
      const name = pkg.split('/')[1]!;
      for (let i = 0; i < RELEASES_EACH; i++) {
        // Incompressible content, so each release takes a moment to pull, verify and write.
        const blob = await makeTarball([{ name: `${name}/data.bin`, content: randomBytes(128 * 1024) }]);
        const res = await call(`${source.url}/api/v1/packages/${pkg}`, { method: 'POST', body: pushBody(blob, `1.${i}.0`, 'kpm') });
        expect(res.status, res.body.toString()).toBe(200);
      }
      expect((await call(`${source.url}/api/v1/packages/${pkg}/channels/stable/1.${RELEASES_EACH - 1}.0`, { method: 'POST' })).status).toBe(200);
    }
  });

  afterAll(async () => {
    await source?.stop();
  });

  it('finishes the job without copying anything twice', async () => {
    const dst = `oci:${join(work, 'bulk-destination')}`;
    const src = `127.0.0.1:${source.port}`;
    const first = await new Promise<{ stdout: string; signal: NodeJS.Signals | null; code: number | null }>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'cnr', 'migrate', src, dst, '--concurrency', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        if (/^copied /m.test(stdout) && child.exitCode === null) child.kill('SIGKILL');
      });
      child.stderr.resume();
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ stdout, signal, code }));
    });
    expect(first.signal, first.stdout).toBe('SIGKILL');
    const firstCopied = progress(first.stdout, 'copied');
    expect(firstCopied.length).toBeGreaterThanOrEqual(1);
    expect(firstCopied.length).toBeLessThan(TOTAL);

    const second = await runCli(['--json', 'cnr', 'migrate', src, dst, '--concurrency', '1']);
    expectOk(second, 'the second run');
    const summary = JSON.parse(second.stdout) as { releases: number; present: number; skipped: number; failed: number; packages: number };
    expect(summary).toMatchObject({ packages: PACKAGES.length, skipped: 0, failed: 0 });
    expect(summary.releases + summary.present).toBe(TOTAL);
    expect(summary.releases).toBeGreaterThan(0);
    const present = progress(second.stderr, 'present');
    const copied = progress(second.stderr, 'copied');
    expect(present).toHaveLength(summary.present);
    expect(copied).toHaveLength(summary.releases);
    // What the first run reported copied is present now, and was not copied again.
    for (const r of firstCopied) expect(present).toContain(r);
    expect(copied.filter((r) => firstCopied.includes(r))).toEqual([]);

    expect(await servedAnswers(dst)).toEqual(await answersOf(source.url));
  });
});

describe('a damaged blob in a copy of the reference store', () => {
  it('is reported as skipped, the rest migrates, and the exit status is 1', async () => {
    const copy = join(work, 'damaged-store');
    await cp(REFERENCE_STORE, copy, { recursive: true });
    await run('chmod', ['-R', 'u+w', copy]);
    const pkg = 'titi/rocketchat';
    const damaged = referencePackages[pkg]!.all.find((v) => v.release === '1.0.1')!;
    const file = join(copy, 'packages', 'titi', 'rocketchat', 'digests', 'sha256', damaged.content.digest);
    const text = await readFile(file, 'utf8');
    const at = Math.floor(text.trim().length / 2);
    await writeFile(file, `${text.slice(0, at)}${text[at] === 'A' ? 'B' : 'A'}${text.slice(at + 1)}`);

    const dst = `oci:${join(work, 'damaged-destination')}`;
    const res = await runCli(['--json', 'cnr', 'migrate', `appr-store:${copy}`, dst]);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/^cnab-oci: error: cnr migrate: 1 release\(s\) skipped/m);
    expect(progress(res.stderr, 'skipped')).toEqual(['titi/rocketchat@1.0.1 (kpm)']);
    expect(res.stderr).toMatch(new RegExp(`^skipped\\s+titi/rocketchat@1\\.0\\.1 \\(kpm\\): .*${damaged.content.digest}`, 'm'));
    expect(JSON.parse(res.stdout)).toMatchObject({ packages: 3, releases: referenceReleases.length - 1, skipped: 1, failed: 0, present: 0 });

    // Everything else arrived: the reference's answers less the damaged release (and the channel only it was in).
    const served = await servedAnswers(dst);
    const expectedList = referenceList.map((e) => (e.name === pkg ? { ...e, releases: e.releases.filter((r) => r !== '1.0.1') } : e));
    expect(served.list).toEqual(expectedList);
    expect(served.packages).toEqual({
      ...referencePackages,
      [pkg]: {
        all: referencePackages[pkg]!.all.filter((v) => v !== damaged),
        channels: referencePackages[pkg]!.channels
          .map((c) => ({ ...c, releases: c.releases.filter((r) => r !== '1.0.1') }))
          .filter((c) => c.releases.length > 0)
          .map((c) => ({ ...c, current: c.releases.includes(c.current) ? c.current : c.releases[0]! })),
      },
    });
  });
});

describe('--dry-run', () => {
  it('lists what would move and writes nothing, to a layout or a registry', async () => {
    const dir = join(work, 'dry-layout');
    const res = await runCli(['cnr', 'migrate', `appr-store:${REFERENCE_STORE}`, `oci:${dir}`, '--dry-run']);
    expectOk(res, 'dry run');
    expect(progress(res.stdout, 'would copy')).toHaveLength(referenceReleases.length);
    expect(res.stdout.match(/^would set\s+\S+:\S+$/gm)).toHaveLength(referenceChannels.length);
    expect(res.stdout).toMatch(new RegExp(`^dry run: would copy ${referenceReleases.length} release\\(s\\) .* of ${referenceList.length} package\\(s\\)`, 'm'));
    expect(existsSync(dir)).toBe(false);

    const prefix = 'dryrun';
    const registryRun = await runCli(['--json', 'cnr', 'migrate', `appr-store:${REFERENCE_STORE}`, `${registry.host}/${prefix}`, '--dry-run', '--namespace', 'titi']);
    expectOk(registryRun, 'dry run to a registry, one namespace');
    const titi = referencePackages['titi/rocketchat']!;
    expect(JSON.parse(registryRun.stdout)).toMatchObject({ dryRun: true, packages: 1, releases: titi.all.length, present: 0, channels: 0 });
    expect(progress(registryRun.stderr, 'would copy').every((r) => r.startsWith('titi/'))).toBe(true);
    const catalog = await request(`http://${registry.host}/v2/_catalog`);
    const repositories = ((await catalog.body.json()) as { repositories: string[] }).repositories;
    expect(repositories.filter((r) => r.startsWith(`${prefix}/`))).toEqual([]);
  });

  it('refuses a source that is not a store (exit status 2)', async () => {
    const res = await runCli(['cnr', 'migrate', `appr-store:${join(work, 'nothing-here')}`, `oci:${join(work, 'never')}`]);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/^cnab-oci: error: .*nothing-here: no such directory$/m);
  });
});
