import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTarget } from '../../src/content/memory.js';
import { NotFoundError } from '../../src/oci/errors.js';
import { parseReference } from '../../src/oci/reference.js';
import type { Descriptor } from '../../src/oci/schemas.js';
import { RegistryClient } from '../../src/registry/client.js';
import { copyGraph } from '../../src/transfer/copy.js';
import { runCli, CLI } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { blob } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';


/**
 * kill -9 in the middle of a push: the tag must never point at incomplete content (it is
 * written last), and running the same command again finishes the job without sending again
 * the blobs that had already arrived.
 */
describe('a push killed with SIGKILL, then run again', () => {
  let source: TestRegistry;
  let destination: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let bundlePath: string;
  /** Image manifest digest -> the blobs under it. */
  const children = new Map<string, string[]>();
  beforeAll(async () => {
    [source, destination] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy(destination.host);
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-kill-'));
    const client = new RegistryClient();
    const images: Record<string, { imageType: string; image: string }> = {};
    for (let i = 0; i < 4; i++) {
      const repo = client.repository(parseReference(`${source.host}/src/img${i}`));
      const layers = [blob(randomBytes(40_000 + i), 'application/vnd.oci.image.layer.v1.tar+gzip'), blob(randomBytes(9_000 + i), 'application/vnd.oci.image.layer.v1.tar+gzip')];
      const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: i })), 'application/vnd.oci.image.config.v1+json');
      for (const b of [config, ...layers]) await repo.push(b.desc, b.data);
      const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: config.desc, layers: layers.map((l) => l.desc) })), 'application/vnd.oci.image.manifest.v1+json');
      await repo.push(manifest.desc, manifest.data);
      await repo.tag(manifest.desc, '1');
      children.set(manifest.desc.digest, [config, ...layers].map((b) => b.desc.digest));
      images[`c${i}`] = { imageType: 'oci', image: `${source.host}/src/img${i}:1` };
    }
    await client.close();
    bundlePath = join(work, 'bundle.json');
    await writeFile(bundlePath, JSON.stringify({
      schemaVersion: 'v1.2.0',
      name: 'killed',
      version: '1.0.0',
      invocationImages: [{ imageType: 'oci', image: images.c0!.image }],
      images,
    }));
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([source?.stop(), destination?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('never leaves the tag on incomplete content, and the re-run sends only what is missing', async () => {
    const target = `${proxy.host}/acme/killed:1`;
    const args = ['--debug', 'push', bundlePath, '--target', target, '--concurrency', '2', '--bundle', join(work, 'fixed.json')];
    const env = { ...process.env, DOCKER_CONFIG: join(work, 'docker') };
    const watcher = new RegistryClient();
    const repo = watcher.repository(parseReference(`${destination.host}/acme/killed`));
    /** The tag is absent, or everything under it is there and verifies. */
    const tagState = async (): Promise<'absent' | 'complete'> => {
      let root: Descriptor;
      try {
        root = await repo.resolve('1');
      } catch (err) {
        if (err instanceof NotFoundError) return 'absent';
        throw err;
      }
      await copyGraph(repo, new MemoryTarget(), root); // throws on anything missing or damaged
      return 'complete';
    };
    const committed = () => proxy.log.filter((e) => e.method === 'PUT' && e.url.includes('digest=') && e.status === 201);

    // Every request to the destination is slowed, so the push is still going when it is killed.
    proxy.setPlan({ rate: 1, faults: ['request:slow'], slowMs: 150 });
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const states: string[] = [];
    const deadline = Date.now() + 30_000;
    while (committed().length < 3 && Date.now() < deadline && child.exitCode === null) {
      states.push(await tagState());
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(child.exitCode, stderr).toBeNull(); // still pushing
    child.kill('SIGKILL');
    expect(await exited).toBeNull(); // killed by the signal, not finished
    // Requests the proxy was holding may still land; wait for them, then look.
    await new Promise((r) => setTimeout(r, 400));
    states.push(await tagState());
    expect(states.length).toBeGreaterThan(3);
    expect(states.every((s) => s === 'absent')).toBe(true);

    const arrived = new Set(committed().map((e) => new URL(e.url, 'http://x').searchParams.get('digest')!));
    expect(arrived.size).toBeGreaterThanOrEqual(3);
    // The blobs that arrived are really in the registry (checked directly, not through the proxy).
    for (const digest of arrived) expect(await repo.exists({ mediaType: 'application/octet-stream', digest: digest as Descriptor['digest'], size: 0 })).toBe(true);

    proxy.setPlan({});
    const from = proxy.log.length;
    const rerun = await runCli(args, { env });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(await tagState()).toBe('complete');
    const log = proxy.log.slice(from);
    const resent = log.filter((e) => e.method === 'PUT' && e.url.includes('digest=')).map((e) => new URL(e.url, 'http://x').searchParams.get('digest')!);
    expect(resent.length).toBeGreaterThan(0); // the rest was sent
    expect(resent.filter((d) => arrived.has(d))).toEqual([]); // and nothing twice
    // Each blob that had arrived was found by a HEAD instead: its own, or its manifest's (a
    // manifest that is there has all its blobs there, so the copy does not look further down).
    const found = new Set<string>();
    for (const e of log.filter((x) => x.method === 'HEAD' && x.status === 200)) {
      const digest = /\/(?:blobs|manifests)\/(sha256:[0-9a-f]{64})$/.exec(e.url)?.[1];
      if (!digest) continue;
      found.add(digest);
      for (const child of children.get(digest) ?? []) found.add(child);
    }
    for (const digest of arrived) expect(found.has(digest), digest).toBe(true);
    expect(rerun.stderr).toMatch(/already there/);
    await watcher.close();
  }, 60_000);
});
