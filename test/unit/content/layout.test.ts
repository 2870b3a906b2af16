import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OciLayout, REF_NAME_ANNOTATION } from '../../../src/content/layout.js';
import { readAll } from '../../../src/content/read.js';
import { digestOf } from '../../../src/oci/digest.js';
import { DigestMismatchError, InputError, NotFoundError } from '../../../src/oci/errors.js';
import { MediaType } from '../../../src/oci/mediatypes.js';
import type { Descriptor } from '../../../src/oci/schemas.js';
import { parseBundle } from '../../../src/cnab/bundle.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const FIXTURES = join(ROOT, 'fixtures');
const FIXTURE_LAYOUT = join(FIXTURES, 'images');

function describeBytes(mediaType: string, data: Uint8Array): Descriptor {
  return { mediaType, digest: digestOf(data), size: data.length };
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** A config, a layer and a manifest referencing both. */
function smallImage(seed: string) {
  const config = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed });
  const layer = Buffer.from(`layer ${seed}`);
  const configDesc = describeBytes(MediaType.OciConfig, config);
  const layerDesc = describeBytes(MediaType.OciLayer, layer);
  const manifest = json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers: [layerDesc] });
  return { config, configDesc, layer, layerDesc, manifest, manifestDesc: describeBytes(MediaType.OciManifest, manifest) };
}

async function pushImage(layout: OciLayout, img: ReturnType<typeof smallImage>) {
  await layout.push(img.configDesc, img.config);
  await layout.push(img.layerDesc, Readable.from([img.layer.subarray(0, 3), img.layer.subarray(3)]));
  await layout.push(img.manifestDesc, img.manifest);
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnab-oci-layout-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('OciLayout.open', () => {
  it('creates oci-layout and an empty index.json', async () => {
    const path = join(dir, 'new', 'layout');
    const layout = await OciLayout.open(path, { create: true });
    expect(layout.location).toBe(`oci:${path}`);
    expect(JSON.parse(await readFile(join(path, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(JSON.parse(await readFile(join(path, 'index.json'), 'utf8'))).toEqual({ schemaVersion: 2, manifests: [] });
    expect(await layout.list()).toEqual([]);
  });

  it('reopening with create keeps existing content', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const img = smallImage('a');
    await pushImage(layout, img);
    await layout.tag(img.manifestDesc, 'v1');
    const again = await OciLayout.open(dir, { create: true });
    expect((await again.resolve('v1')).digest).toBe(img.manifestDesc.digest);
  });

  it('create=false on a missing directory is an InputError naming it', async () => {
    const missing = join(dir, 'nope');
    const err = await OciLayout.open(missing, { create: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain(missing);
    expect((err as Error).message).not.toContain('\n');
  });

  it('create=false on a directory that is not a layout is an InputError', async () => {
    await expect(OciLayout.open(dir, { create: false })).rejects.toThrow(/not an OCI image layout/);
  });

  it('bad index.json is an InputError naming the file', async () => {
    await OciLayout.open(dir, { create: true });
    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[');
    await expect(OciLayout.open(dir, { create: false })).rejects.toThrow(new RegExp(`${join(dir, 'index.json')}: invalid JSON`));
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'x', digest: 'sha256:zz', size: 1 }] }));
    const err = await OciLayout.open(dir, { create: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/index\.json: not an OCI image index: manifests\[0\]\.digest/);
  });
});

describe('OciLayout push/fetch/tag/resolve', () => {
  it('round-trips blobs and resolves tags and digests', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const img = smallImage('a');
    await pushImage(layout, img);
    expect(await layout.exists(img.layerDesc)).toBe(true);
    expect(Buffer.from(await readAll(await layout.fetch(img.layerDesc)))).toEqual(img.layer);
    expect(await readFile(layout.blobPath(img.configDesc.digest))).toEqual(img.config);

    await layout.tag(img.manifestDesc, 'v1');
    const byTag = await layout.resolve('v1');
    expect(byTag).toMatchObject({ ...img.manifestDesc, annotations: { [REF_NAME_ANNOTATION]: 'v1' } });
    expect((await layout.resolve(img.manifestDesc.digest)).digest).toBe(img.manifestDesc.digest);
    await expect(layout.resolve('v2')).rejects.toThrow(new NotFoundError(`oci:${dir}: v2 not found`));
  });

  it('resolves an untagged manifest by digest from its content, not a plain blob', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const img = smallImage('b');
    await pushImage(layout, img);
    expect(await layout.resolve(img.manifestDesc.digest)).toEqual(img.manifestDesc);
    await expect(layout.resolve(img.configDesc.digest)).rejects.toBeInstanceOf(NotFoundError);
    await expect(layout.resolve(digestOf('absent'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('pushing an existing blob is a no-op', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const img = smallImage('c');
    await pushImage(layout, img);
    await pushImage(layout, img);
    expect((await readdir(join(dir, 'blobs', 'sha256'))).sort()).toHaveLength(3);
  });

  it('a digest mismatch on push leaves nothing at the final path, nor a temp file', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const desc = describeBytes(MediaType.OciLayer, Buffer.from('expected'));
    await expect(layout.push(desc, Readable.from([Buffer.from('tampered')]))).rejects.toBeInstanceOf(DigestMismatchError);
    expect(existsSync(layout.blobPath(desc.digest))).toBe(false);
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([]);
    // too long also fails, before the whole stream is stored
    await expect(layout.push(desc, Buffer.from('expected and more'))).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await layout.exists(desc)).toBe(false);
  });

  it('fetching a corrupted blob errors with DigestMismatchError', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const data = Buffer.from('original content');
    const desc = describeBytes(MediaType.OciLayer, data);
    await layout.push(desc, data);
    await writeFile(layout.blobPath(desc.digest), 'corrupted content');
    await expect(readAll(await layout.fetch(desc))).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('fetching a missing blob is NotFoundError', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await expect(layout.fetch(describeBytes(MediaType.OciLayer, Buffer.from('x')))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('tagging replaces a previous entry of the same name and keeps the others', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const a = smallImage('a');
    const b = smallImage('b');
    await pushImage(layout, a);
    await pushImage(layout, b);
    await layout.tag(a.manifestDesc, 'latest');
    await layout.tag(a.manifestDesc, 'stable');
    await layout.tag({ ...b.manifestDesc, platform: { architecture: 'arm64', os: 'linux' } }, 'latest');
    const list = await layout.list();
    expect(list.map((d) => d.annotations?.[REF_NAME_ANNOTATION])).toEqual(['latest', 'stable']);
    expect(list[0]).toEqual({ ...b.manifestDesc, platform: { architecture: 'arm64', os: 'linux' }, annotations: { [REF_NAME_ANNOTATION]: 'latest' } });
    expect((await layout.resolve('stable')).digest).toBe(a.manifestDesc.digest);
  });

  it('concurrent tags in one process all land in index.json', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const other = await OciLayout.open(dir, { create: false });
    const img = smallImage('a');
    await pushImage(layout, img);
    const tags = Array.from({ length: 20 }, (_, i) => `t${i}`);
    await Promise.all(tags.map((t, i) => (i % 2 ? layout : other).tag(img.manifestDesc, t)));
    const names = (await layout.list()).map((d) => d.annotations?.[REF_NAME_ANNOTATION]);
    expect(names.sort()).toEqual([...tags].sort());
  });

  it('tagging a missing manifest is NotFoundError', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await expect(layout.tag(smallImage('z').manifestDesc, 'v1')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('fixtures (scripts/make-fixtures.mjs)', () => {
  const refs = ['example.com/cnab-oci/hello-installer:0.1.0', 'example.com/cnab-oci/web:1.0', 'example.com/cnab-oci/worker:1.0'];

  it('the layout opens and resolves every image, whose blobs all verify', async () => {
    const layout = await OciLayout.open(FIXTURE_LAYOUT, { create: false });
    expect((await layout.list()).map((d) => d.annotations?.[REF_NAME_ANNOTATION])).toEqual(refs);
    expect((await layout.resolve(refs[0]!)).mediaType).toBe(MediaType.DockerManifest);
    const web = await layout.resolve(refs[1]!);
    expect(web.mediaType).toBe(MediaType.OciIndex);
    const index = JSON.parse(Buffer.from(await readAll(await layout.fetch(web))).toString()) as { manifests: Descriptor[] };
    expect(index.manifests.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64']);
    // children of the index are found by digest although index.json does not list them
    expect(await layout.resolve(index.manifests[1]!.digest)).toEqual({ mediaType: MediaType.OciManifest, digest: index.manifests[1]!.digest, size: index.manifests[1]!.size });
    for (const name of await readdir(join(FIXTURE_LAYOUT, 'blobs', 'sha256'))) {
      const data = await readFile(join(FIXTURE_LAYOUT, 'blobs', 'sha256', name));
      expect(digestOf(data)).toBe(`sha256:${name}`);
    }
  });

  it('bundle.json is a valid CNAB bundle naming the three images', async () => {
    const { bundle, unknownFields } = parseBundle(await readFile(join(FIXTURES, 'bundle.json')), 'fixtures/bundle.json');
    expect(unknownFields).toEqual([]);
    expect([bundle.invocationImages[0]!.image, bundle.images?.web?.image, bundle.images?.worker?.image]).toEqual(refs);
  });

  it('the script is deterministic: a re-run reproduces the committed bytes', async () => {
    const out = join(dir, 'fixtures');
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'make-fixtures.mjs'), out], { stdio: 'pipe' });
    const list = async (base: string) => (await readdir(base, { recursive: true })).map(String).sort();
    const committed = await list(FIXTURES);
    expect(await list(out)).toEqual(committed);
    for (const rel of committed) {
      if (rel.endsWith('sha256') || rel.endsWith('blobs') || rel === 'images') continue;
      expect(await readFile(join(out, rel)), rel).toEqual(await readFile(join(FIXTURES, rel)));
    }
  });

  // Independent readers: missing, they fail these tests (apt-get install -y umoci skopeo; .ci/run does).
  const tool = (path: string): string => {
    if (!existsSync(path)) throw new Error(`${path} not found: install it (apt-get install -y umoci skopeo), as .ci/run does`);
    return path;
  };
  const umoci = '/usr/bin/umoci';
  it('umoci lists the fixture tags', () => {
    tool(umoci);
    const out = execFileSync(umoci, ['ls', '--layout', FIXTURE_LAYOUT], { encoding: 'utf8' });
    expect(out.trim().split('\n').sort()).toEqual(refs);
  });

  const skopeo = '/usr/bin/skopeo';
  it('skopeo reads the worker manifest byte-for-byte', async () => {
    tool(skopeo);
    const raw = execFileSync(skopeo, ['inspect', '--raw', `oci:${FIXTURE_LAYOUT}:example.com/cnab-oci/worker:1.0`]);
    const layout = await OciLayout.open(FIXTURE_LAYOUT, { create: false });
    const desc = await layout.resolve('example.com/cnab-oci/worker:1.0');
    expect(digestOf(raw)).toBe(desc.digest);
    expect(JSON.parse(raw.toString())).toMatchObject({ mediaType: MediaType.OciManifest, layers: [{ mediaType: MediaType.OciLayerGzip }] });
  });

  it('skopeo reads a layout written by OciLayout', async () => {
    tool(skopeo);
    const layout = await OciLayout.open(dir, { create: true });
    const img = smallImage('s');
    await pushImage(layout, img);
    await layout.tag(img.manifestDesc, 'v1');
    const raw = execFileSync(skopeo, ['inspect', '--raw', `oci:${dir}:v1`]);
    expect(Buffer.from(raw)).toEqual(img.manifest);
  });
});
