import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBundle } from '../../src/cnab/index.js';
import { createImageResolver, openLocation } from '../../src/ops/locations.js';
import { pushBundle } from '../../src/ops/push.js';
import { parseReference } from '../../src/oci/reference.js';
import type { Descriptor } from '../../src/oci/schemas.js';
import { RegistryClient } from '../../src/registry/client.js';
import { ARCHIVE_CASES, writeArchive } from '../corpus/archives.js';
import { pushMalformedBundles, type ManifestCase } from '../corpus/manifests.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const CORPUS = join(import.meta.dirname, '..', 'corpus');

/** Exactly one line on stderr, `cnab-oci: error: ...`, and never a stack trace. */
function expectOneLineError(res: CliResult, code: number, pattern: RegExp | string): void {
  expect(res.code, res.stderr).toBe(code);
  const lines = res.stderr.split('\n').filter((l) => l !== '');
  expect(lines, res.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^cnab-oci: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(res.stderr).not.toMatch(/^\s*at /m);
  expect(res.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
}

/**
 * The bad-input corpus: broken bundles, invalid references, malformed manifests served by a real
 * registry, hostile archives. Each gets one line naming what is wrong and exit status 2 (the
 * user's input) or 1 (what a registry served), and no request is made for input refused up front.
 */
describe('bad input corpus', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let good: Descriptor;
  let image: Descriptor;
  const env = () => ({ DOCKER_CONFIG: join(work, 'docker') });
  beforeAll(async () => {
    registry = await startRegistry();
    // A plain pass-through proxy: its log proves which commands made no request at all.
    proxy = await startFaultProxy(registry.host);
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-bad-input-'));
    const client = new RegistryClient();
    const repo = client.repository(parseReference(`${registry.host}/corpus/app`));
    image = await pushImage(repo, { layers: [300] });
    const { platform: _p, ...plain } = image;
    image = plain;
    await repo.tag(image, 'image');
    const { bundle } = parseBundle(JSON.stringify({ schemaVersion: 'v1.2.0', name: 'corpus', version: '1.0.0', invocationImages: [{ imageType: 'oci', image: `${registry.host}/corpus/app:image` }] }), 'corpus.json');
    const destination = await openLocation(`${registry.host}/corpus/app:good`, client, { create: true });
    good = (await pushBundle(bundle, { destination, resolver: createImageResolver(client, []) })).index;
    await client.close();
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const noRequests = async <T>(f: () => Promise<T>): Promise<T> => {
    const before = proxy.log.length;
    const result = await f();
    expect(proxy.log.slice(before)).toEqual([]);
    return result;
  };

  it('refuses every broken bundle in test/corpus/bundles with one line naming the file and field', async () => {
    const expected = JSON.parse(await readFile(join(CORPUS, 'bundles.json'), 'utf8')) as Record<string, { code: number; pattern: string }>;
    const files = (await readdir(join(CORPUS, 'bundles'))).filter((f) => f.endsWith('.json')).sort();
    // Every corpus file has an expectation, and every expectation a file.
    expect(files).toEqual(Object.keys(expected).filter((k) => !k.startsWith('_')).sort());
    await mkdir(join(work, 'bundles'), { recursive: true });
    for (const file of files) {
      const text = (await readFile(join(CORPUS, 'bundles', file), 'utf8')).replaceAll('REGISTRY', proxy.host);
      const path = join(work, 'bundles', file);
      await writeFile(path, text);
      const res = await noRequests(() => runCli(['push', path, '--target', `${proxy.host}/corpus/app:1`], { env: env() }));
      expectOneLineError(res, expected[file]!.code, new RegExp(expected[file]!.pattern));
    }
  }, 120_000);

  it('refuses generated monsters: a 10 MB string, 100 000 levels of nesting, 10 MB of garbage', async () => {
    const base = { schemaVersion: 'v1.2.0', name: 'monster', version: '1.0.0', invocationImages: [{ imageType: 'oci', image: `${proxy.host}/corpus/app:image` }] };
    const cases: Array<[string, string, RegExp]> = [
      ['big-string.json', JSON.stringify({ ...base, description: 'x'.repeat(10 * 1024 * 1024) }), /bundle "monster": its canonical form is \d+ bytes, over the 4194304-byte limit/],
      ['deep-array.json', `${JSON.stringify(base).slice(0, -1)},"custom":{"deep":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`, /deep-array\.json: custom\.deep\[0\]\[0\].*: nested deeper than 1000 levels/],
      ['deep-object.json', `${JSON.stringify(base).slice(0, -1)},"parameters":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`, /deep-object\.json: parameters\.a\.a.*: nested deeper than 1000 levels/],
      ['garbage.json', `{"name":"${'\u0001'.repeat(10 * 1024 * 1024)}"}`, /garbage\.json: line 1, column 10: control character in string/],
    ];
    for (const [file, text, pattern] of cases) {
      const path = join(work, file);
      await writeFile(path, text);
      const started = Date.now();
      const res = await noRequests(() => runCli(['push', path, '--target', `${proxy.host}/corpus/app:1`], { env: env() }));
      expectOneLineError(res, 2, pattern);
      expect(Date.now() - started).toBeLessThan(20_000);
    }
  }, 120_000);

  it('refuses invalid references before any request', async () => {
    const { cases } = JSON.parse(await readFile(join(CORPUS, 'references.json'), 'utf8')) as { cases: Array<[string, string, number, string]> };
    expect(cases.length).toBeGreaterThan(5);
    for (const [command, reference, code, pattern] of cases) {
      const ref = reference.replaceAll('REGISTRY', proxy.host);
      const res = await noRequests(() => runCli([command, ref], { env: env(), cwd: work }));
      expectOneLineError(res, code, new RegExp(pattern));
    }
    // push to a digest, and a bundle naming an invalid image after a valid one: refused before any request.
    const bundle = join(work, 'two-images.json');
    await writeFile(bundle, JSON.stringify({
      schemaVersion: 'v1.2.0', name: 'x', version: '1.0.0',
      invocationImages: [{ imageType: 'oci', image: `${proxy.host}/corpus/app:image` }],
      images: { z: { imageType: 'oci', image: `${proxy.host}/corpus/App:1` } },
    }));
    expectOneLineError(await noRequests(() => runCli(['push', bundle, '--target', `${proxy.host}/corpus/app@${good.digest}`], { env: env() })), 2, /push needs a tag, not a digest/);
    expectOneLineError(await noRequests(() => runCli(['push', bundle, '--target', `${proxy.host}/corpus/app:1`], { env: env() })), 2, /image ".*\/corpus\/App:1": invalid reference .*must be lowercase/);
    expectOneLineError(await noRequests(() => runCli(['--retries', '-1', 'pull', `${proxy.host}/corpus/app:good`], { env: env() })), 2, /--retries/);
  }, 120_000);

  it('refuses malformed manifests and indexes a real registry serves, with nothing written', async () => {
    const client = new RegistryClient();
    const cases: ManifestCase[] = await pushMalformedBundles(client.repository(parseReference(`${registry.host}/corpus/app`)), good, image);
    await client.close();
    expect(cases.length).toBeGreaterThanOrEqual(7);
    // The good bundle reads back, so each failure below is the case's own.
    const ok = await runCli(['inspect', `${proxy.host}/corpus/app:good`], { env: env() });
    expect(ok.code, ok.stderr).toBe(0);
    for (const c of cases) {
      const out = join(work, `pulled-${c.tag}.json`);
      const map = join(work, `map-${c.tag}.json`);
      const pull = await runCli(['--retries', '1', 'pull', `${proxy.host}/corpus/app:${c.tag}`, '--bundle', out, '--relocation-map', map], { env: env() });
      expectOneLineError(pull, c.code, c.pattern);
      expect(existsSync(out), c.tag).toBe(false);
      expect(existsSync(map), c.tag).toBe(false);
      expectOneLineError(await runCli(['--retries', '1', 'inspect', `${proxy.host}/corpus/app:${c.tag}`], { env: env() }), c.code, c.pattern);
    }
  }, 120_000);

  it('refuses hostile archives, naming the entry, and writes nothing', async () => {
    for (const c of ARCHIVE_CASES) {
      const file = join(work, `${c.name}.tgz`);
      await writeArchive(file, c);
      const dir = join(work, `layout-${c.name}`);
      const res = await noRequests(() => runCli(['import', file, '--target', `oci:${dir}`], { env: env(), cwd: work }));
      expectOneLineError(res, 2, c.pattern);
      expect(existsSync('/tmp/cnab-oci-corpus-evil')).toBe(false);
      expect(existsSync(join(work, 'escape.txt'))).toBe(false);
      // The target may have been created, but holds nothing from the refused archive.
      if (existsSync(join(dir, 'index.json'))) {
        expect(JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')).manifests, c.name).toEqual([]);
      }
    }
  }, 120_000);
});
