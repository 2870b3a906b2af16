import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBytes } from '../../src/content/read.js';
import type { Target } from '../../src/content/target.js';
import { isManifestLike, MediaType } from '../../src/oci/mediatypes.js';
import { parseReference } from '../../src/oci/reference.js';
import type { Descriptor, Platform } from '../../src/oci/schemas.js';
import { RegistryClient } from '../../src/registry/client.js';
import { successors } from '../../src/transfer/graph.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { blob, pushImage, pushMultiArch } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const skopeo = (...args: string[]) => run('skopeo', args, { maxBuffer: 16 << 20 });

/** An OCI image whose first layer is `shared` (the same bytes in several images). */
async function pushSharing(target: Target, shared: ReturnType<typeof blob>, extra: number, platform: Platform = { os: 'linux', architecture: 'amd64' }): Promise<Descriptor> {
  const own = blob(randomBytes(extra), MediaType.OciLayerGzip);
  const config = blob(Buffer.from(JSON.stringify({ architecture: platform.architecture, os: platform.os, rootfs: { type: 'layers', diff_ids: [] }, config: {} })), MediaType.OciConfig);
  for (const b of [config, shared, own]) await target.push(b.desc, b.data);
  const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: config.desc, layers: [shared.desc, own.desc] })), MediaType.OciManifest);
  await target.push(manifest.desc, manifest.data);
  return manifest.desc;
}

/** Every object under `root` in a registry repository, by digest. */
async function graphOf(client: RegistryClient, repo: string, root: Descriptor): Promise<Map<string, Descriptor>> {
  const target = client.repository(parseReference(repo));
  const seen = new Map<string, Descriptor>();
  const visit = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.set(d.digest, d);
    for (const child of successors(d, await fetchBytes(target, d), repo)) await visit(child);
  };
  await visit(root);
  return seen;
}

/** Images in `registry/src/*`, a bundle naming them, pushed to `registry/acme/shop:1.2.3`. */
async function publishBundle(host: string, work: string): Promise<{ bundleRef: string; images: Record<string, Descriptor>; bundle: Record<string, unknown> }> {
  const client = new RegistryClient();
  const repo = (name: string) => client.repository(parseReference(`${host}/src/${name}`));
  const shared = blob(randomBytes(100_000), MediaType.OciLayerGzip);
  const installer = await pushImage(repo('installer'), { format: 'docker', layers: [2048, 300_000] });
  await repo('installer').tag(installer, '1.0');
  const tools = await pushSharing(repo('tools'), shared, 512);
  const web = await pushMultiArch(repo('web'));
  await repo('web').tag(web, '2.0');
  const db = await pushSharing(repo('db'), shared, 4096);
  await repo('db').tag(db, '3.0');
  await client.close();
  const bundle = {
    schemaVersion: 'v1.2.0',
    name: 'shop',
    version: '1.2.3',
    invocationImages: [
      { imageType: 'docker', image: `${host}/src/installer:1.0` },
      { imageType: 'oci', image: `${host}/src/tools@${tools.digest}` },
    ],
    images: {
      web: { imageType: 'oci', image: `${host}/src/web:2.0` },
      db: { imageType: 'oci', image: `${host}/src/db:3.0` },
    },
  };
  const path = join(work, `bundle-${host.replace(/\W/g, '_')}.json`);
  await writeFile(path, JSON.stringify(bundle));
  const bundleRef = `${host}/acme/shop:1.2.3`;
  const push = await runCli(['push', path, '--target', bundleRef]);
  if (push.code !== 0) throw new Error(push.stderr);
  return { bundleRef, images: { installer, tools, web, db }, bundle };
}

function sum(descriptors: Descriptor[]): number {
  return descriptors.reduce((n, d) => n + d.size, 0);
}

function errorLines(stderr: string): string[] {
  return stderr.trim().split('\n').filter((l) => l.startsWith('cnab-oci: error:'));
}

describe('cnab-oci copy', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let src: Awaited<ReturnType<typeof publishBundle>>;
  let sourceDigest: string;
  let sourceGraph: Map<string, Descriptor>;
  let aStopped = false;

  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy(b.host);
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-copy-'));
    src = await publishBundle(a.host, work);
    const inspect = await runCli(['--json', 'inspect', src.bundleRef]);
    const inspected = JSON.parse(inspect.stdout);
    sourceDigest = inspected.digest;
    const client = new RegistryClient();
    const root = await client.repository(parseReference(src.bundleRef)).resolve('1.2.3');
    sourceGraph = await graphOf(client, `${a.host}/acme/shop`, root);
    await client.close();
  });

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([aStopped ? undefined : a?.stop(), b?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('copies a bundle and every image graph to another registry, each blob once', async () => {
    const dst = `${proxy.host}/relo/shop:1.2.3`;
    const mapFile = join(work, 'relo-map.json');
    const res = await runCli(['--json', 'copy', src.bundleRef, dst, '--relocation-map', mapFile]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.digest).toBe(sourceDigest); // nothing rewritten
    expect(out.destination).toBe(dst);
    expect(out.bytesMoved).toBe(out.stats.bytesCopied);
    expect(out.durationMs).toBeGreaterThan(0);

    // Exactly the objects of the source graph moved, each once.
    expect(out.stats.objectsCopied).toBe(sourceGraph.size);
    expect(out.stats.bytesCopied).toBe(sum([...sourceGraph.values()].filter((d) => d.digest !== sourceDigest)) + out.size);
    const blobPuts = proxy.log.filter((r) => r.method === 'PUT' && /\/blobs\/uploads\/.*digest=/.test(r.url)).map((r) => decodeURIComponent(/digest=([^&]+)/.exec(r.url)![1]!));
    expect(new Set(blobPuts).size).toBe(blobPuts.length);
    const manifestPuts = proxy.log.filter((r) => r.method === 'PUT' && /\/manifests\/sha256:/.test(r.url));
    expect(new Set(manifestPuts.map((r) => r.url)).size).toBe(manifestPuts.length);

    // The relocation map sends every original image into the destination, by digest.
    const map = JSON.parse(await readFile(mapFile, 'utf8'));
    expect(map).toEqual(out.relocationMap);
    expect(Object.keys(map).sort()).toEqual([`${a.host}/src/db:3.0`, `${a.host}/src/installer:1.0`, `${a.host}/src/tools@${src.images.tools!.digest}`, `${a.host}/src/web:2.0`]);
    for (const value of Object.values(map) as string[]) expect(value).toMatch(new RegExp(`^${proxy.host}/relo/shop@sha256:[0-9a-f]{64}$`));
    expect(map[`${a.host}/src/web:2.0`]).toBe(`${proxy.host}/relo/shop@${src.images.web!.digest}`);

    // An independent reader finds every image in the destination, and copies (verifies) them whole.
    const raws = await Promise.all((Object.values(map) as string[]).map((value) => skopeo('inspect', '--tls-verify=false', '--raw', `docker://${value.replace(proxy.host, b.host)}`)));
    for (const { stdout } of raws) expect(JSON.parse(stdout).schemaVersion).toBe(2);
    // Pulling the copy gives the same bundle as pulling the original.
    const [p1, p2] = await Promise.all([
      runCli(['pull', src.bundleRef, '--bundle', join(work, 'p1.json'), '--relocation-map', join(work, 'p1-map.json')]),
      runCli(['pull', `${b.host}/relo/shop:1.2.3`, '--bundle', join(work, 'p2.json'), '--relocation-map', join(work, 'p2-map.json')]),
      skopeo('copy', '--all', '--src-tls-verify=false', `docker://${b.host}/relo/shop@${src.images.web!.digest}`, `oci:${join(work, 'skopeo-web')}:web`),
      skopeo('copy', '--src-tls-verify=false', `docker://${b.host}/relo/shop@${src.images.installer!.digest}`, `oci:${join(work, 'skopeo-inst')}:inst`),
    ]);
    expect(p1.code, p1.stderr).toBe(0);
    expect(p2.code, p2.stderr).toBe(0);
    expect(await readFile(join(work, 'p2.json'), 'utf8')).toBe(await readFile(join(work, 'p1.json'), 'utf8'));
  });

  it('moves nothing when copied again', async () => {
    const res = await runCli(['--json', 'copy', src.bundleRef, `${b.host}/relo/shop:1.2.3`]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.bytesMoved).toBe(0);
    expect(out.stats.objectsCopied).toBe(0);
    // Every manifest and index is there (HEAD), walked only for what may be attached to it: no blob is even asked about.
    const manifests = [...sourceGraph.values()].filter((d) => isManifestLike(d.mediaType));
    expect(out.stats.objectsSkipped).toBe(manifests.length);
    // Without referrers, the four image roots, the bundle's config manifest (copied beside the
    // images) and the bundle index are there: nothing below them is walked.
    const bare = await runCli(['--json', 'copy', '--no-referrers', src.bundleRef, `${b.host}/relo/shop:1.2.3`]);
    expect(bare.code, bare.stderr).toBe(0);
    expect(JSON.parse(bare.stdout).stats.objectsSkipped).toBe(6);
  });

  it('mounts blobs within one registry, and keeps the source tag when the destination has none', async () => {
    const res = await runCli(['--json', 'copy', src.bundleRef, `${a.host}/team/shop`]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.destination).toBe(`${a.host}/team/shop:1.2.3`);
    // Every blob mounted; only manifests and indexes (a few KiB) travel.
    const objects = [...sourceGraph.values()].filter((d) => d.digest !== sourceDigest);
    const manifests = objects.filter((d) => isManifestLike(d.mediaType));
    const blobs = objects.filter((d) => !isManifestLike(d.mediaType));
    expect(out.mounts).toBe(blobs.length);
    expect(out.bytesSkipped).toBe(sum(blobs));
    expect(out.stats.bytesCopied).toBe(sum(manifests) + out.size);
    expect(out.stats.bytesCopied).toBeLessThan(20_000);
    const { stdout } = await skopeo('list-tags', '--tls-verify=false', `docker://${a.host}/team/shop`);
    expect(JSON.parse(stdout).Tags).toEqual(['1.2.3']);
  });

  it('--platform keeps only the chosen platform, and the bundle index points at the filtered index', async () => {
    const res = await runCli(['--json', 'copy', src.bundleRef, `${b.host}/amd64/shop:1`, '--platform', 'linux/amd64']);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.digest).not.toBe(sourceDigest);
    expect(out.filtered).toHaveLength(1);
    const web = out.filtered[0];
    expect(web).toMatchObject({ path: 'images.web', from: src.images.web!.digest, platforms: ['linux/amd64'] });
    expect(out.relocationMap[`${a.host}/src/web:2.0`]).toBe(`${b.host}/amd64/shop@${web.to}`);

    const [{ stdout: raw }, { stdout: bundleRaw }, pull] = await Promise.all([
      skopeo('inspect', '--tls-verify=false', '--raw', `docker://${b.host}/amd64/shop@${web.to}`),
      skopeo('inspect', '--tls-verify=false', '--raw', `docker://${b.host}/amd64/shop:1`),
      runCli(['pull', `${b.host}/amd64/shop:1`, '--bundle', join(work, 'amd64.json'), '--relocation-map', join(work, 'amd64-map.json')]),
    ]);
    const filteredIndex = JSON.parse(raw);
    expect(filteredIndex.manifests.map((m: { platform: Platform }) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64']);
    expect(JSON.parse(bundleRaw).manifests.map((m: Descriptor) => m.digest)).toContain(web.to);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(out.digest);
    const pulled = JSON.parse(await readFile(join(work, 'amd64.json'), 'utf8'));
    expect(pulled.images.web.contentDigest).toBe(web.to);
    expect(JSON.parse(await readFile(join(work, 'amd64-map.json'), 'utf8'))[`${a.host}/src/web:2.0`]).toBe(`${b.host}/amd64/shop@${web.to}`);
    // The amd64 manifest is there; the arm64 one never travelled.
    const { stdout: sourceIndex } = await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${a.host}/src/web:2.0`);
    const arm = JSON.parse(sourceIndex).manifests.find((m: { platform: Platform }) => m.platform.architecture === 'arm64');
    await expect(skopeo('inspect', '--tls-verify=false', '--raw', `docker://${b.host}/amd64/shop@${filteredIndex.manifests[0].digest}`)).resolves.toBeTruthy();
    await expect(skopeo('inspect', '--tls-verify=false', '--raw', `docker://${b.host}/amd64/shop@${arm.digest}`)).rejects.toThrow();
  });

  it('--preserve-tags tags every image with its original tag', async () => {
    const res = await runCli(['copy', src.bundleRef, `${b.host}/tags/shop:bundle`, '--preserve-tags']);
    expect(res.code, res.stderr).toBe(0);
    const { stdout } = await skopeo('list-tags', '--tls-verify=false', `docker://${b.host}/tags/shop`);
    expect(JSON.parse(stdout).Tags.sort()).toEqual(['1.0', '2.0', '3.0', 'bundle']);
    const { stdout: web } = await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${b.host}/tags/shop:2.0`);
    expect(JSON.parse(web).manifests).toHaveLength(2);
  });

  it('copies into oci:DIR and oci-archive:FILE, and from them back into a registry', async () => {
    const dir = join(work, 'layout');
    const archive = join(work, 'shop.tar');
    const [toDir, toArchive] = await Promise.all([
      runCli(['--json', 'copy', src.bundleRef, `oci:${dir}:shop`]),
      runCli(['--json', 'copy', src.bundleRef, `oci-archive:${archive}`]),
    ]);
    expect(toDir.code, toDir.stderr).toBe(0);
    expect(JSON.parse(toDir.stdout).digest).toBe(sourceDigest);
    expect(toArchive.code, toArchive.stderr).toBe(0);
    expect(JSON.parse(toArchive.stdout).destination).toBe(`oci-archive:${archive}:1.2.3`);
    // skopeo reads both.
    const [{ stdout: l }, { stdout: t }, fromDir, fromArchive] = await Promise.all([
      skopeo('inspect', '--raw', `oci:${dir}:shop`),
      skopeo('inspect', '--raw', `oci-archive:${archive}:1.2.3`),
      runCli(['--json', 'copy', `oci:${dir}:shop`, `${b.host}/fromdir/shop:x`]),
      runCli(['--json', 'copy', `oci-archive:${archive}:1.2.3`, `${b.host}/fromarchive/shop:y`, '--relocation-map', join(work, 'fa.json')]),
    ]);
    expect(JSON.parse(l).manifests).toHaveLength(5);
    expect(JSON.parse(t).manifests).toHaveLength(5);
    expect(fromDir.code, fromDir.stderr).toBe(0);
    expect(JSON.parse(fromDir.stdout).digest).toBe(sourceDigest);
    expect(fromArchive.code, fromArchive.stderr).toBe(0);
    expect(JSON.parse(fromArchive.stdout).digest).toBe(sourceDigest);
    const map = JSON.parse(await readFile(join(work, 'fa.json'), 'utf8'));
    expect(map[`${a.host}/src/web:2.0`]).toBe(`${b.host}/fromarchive/shop@${src.images.web!.digest}`);
    await skopeo('copy', '--all', '--src-tls-verify=false', `docker://${b.host}/fromarchive/shop@${src.images.web!.digest}`, `oci:${join(work, 'fa-web')}:web`);
  });

  it('refuses bad input with one line and exit 2, a missing source with exit 1, and tags nothing', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['copy', src.bundleRef, `${b.host}/bad/shop:1`, '--platform', 'linux'], 2, /--platform "linux": expected os\/arch/],
      [['copy', src.bundleRef, `${b.host}/bad/shop:1`, '--platform', 'plan9/mips'], 2, /images\.web .*has none of the platforms plan9\/mips/],
      [['copy', `${a.host}/acme/shop:no-such-tag`, `${b.host}/bad/shop:1`], 1, new RegExp(`${a.host}/acme/shop.*no-such-tag.*not found|no-such-tag`)],
      [['copy', 'UPPER/Case::x', `${b.host}/bad/shop:1`], 2, /UPPER\/Case::x/],
      [['copy', src.bundleRef, `${b.host}/bad/shop@sha256:${'0'.repeat(64)}`], 2, /not a digest/],
      [['copy', src.bundleRef, `${b.host}/bad/shop:1`, '--concurrency', '0'], 2, /--concurrency/],
      [['copy', src.bundleRef, `${b.host}/bad/shop:1`, '--relocation-map', join(work, 'nope', 'map.json')], 2, /nope/],
      [['copy', src.bundleRef, `oci-archive:${join(work, 'nope', 'a.tar')}`], 2, /nope.*does not exist/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    for (const [i, [args, code, message]] of cases.entries()) {
      const res = results[i]!;
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(code);
      expect(errorLines(res.stderr), res.stderr).toHaveLength(1);
      expect(res.stderr).toMatch(message);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
    const tags = await skopeo('list-tags', '--tls-verify=false', `docker://${b.host}/bad/shop`).then((r) => JSON.parse(r.stdout).Tags, () => []);
    expect(tags).toEqual([]);
  });

  it('leaves no layout directory behind when a copy into a new one fails, and keeps one that was there', async () => {
    const fresh = join(work, 'never-made');
    const failed = await runCli(['copy', `${a.host}/acme/shop:no-such-tag`, `oci:${fresh}:x`]);
    expect(failed.code, failed.stderr).toBe(1);
    expect(existsSync(fresh)).toBe(false);
    const kept = join(work, 'kept-layout');
    const made = await runCli(['copy', src.bundleRef, `oci:${kept}:ok`]);
    expect(made.code, made.stderr).toBe(0);
    const again = await runCli(['copy', `${a.host}/acme/shop:no-such-tag`, `oci:${kept}:x`]);
    expect(again.code, again.stderr).toBe(1);
    expect(existsSync(join(kept, 'index.json'))).toBe(true);
  });

  // Last: it stops the source registry.
  it('relocates a relocated bundle from where it is now, after the original registry is gone', async () => {
    // relo/shop was copied from `a` by the first test; the bundle still names images in `a`.
    aStopped = true;
    await a.stop();
    const second = await runCli(['--json', 'copy', `${b.host}/relo/shop:1.2.3`, `${b.host}/travel/shop`, '--platform', 'linux/arm64']);
    expect(second.code, second.stderr).toBe(0);
    const out = JSON.parse(second.stdout);
    expect(out.destination).toBe(`${b.host}/travel/shop:1.2.3`);
    // Keys stay the original references; values are where the images are now.
    expect(Object.keys(out.relocationMap)).toContain(`${a.host}/src/installer:1.0`);
    for (const v of Object.values(out.relocationMap) as string[]) expect(v.startsWith(`${b.host}/travel/shop@`)).toBe(true);
    const third = await runCli(['copy', `${b.host}/travel/shop:1.2.3`, `oci:${join(work, 'travel')}:t`]);
    expect(third.code, third.stderr).toBe(0);
    expect(third.stdout.trim()).toBe(out.digest);
    const pull = await runCli(['pull', `oci:${join(work, 'travel')}:t`, '--bundle', join(work, 'travel.json'), '--relocation-map', join(work, 'travel-map.json')]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(work, 'travel.json'), 'utf8')).invocationImages[0].image).toBe(`${a.host}/src/installer:1.0`);
  });
});
