import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBytes } from '../../src/content/read.js';
import type { Target } from '../../src/content/target.js';
import { OciLayout } from '../../src/content/layout.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { parseReference } from '../../src/oci/reference.js';
import type { Descriptor } from '../../src/oci/schemas.js';
import { RegistryClient } from '../../src/registry/client.js';
import { runCli } from '../helpers/cli.js';
import { blob, pushImage, pushMultiArch } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/**
 * Attached content is made here by hand, the way cosign, Notation and oras write it on a
 * registry without the Referrers API (registry:2): the tests read it back the same way, not
 * through the code under test.
 */
const EMPTY = blob(Buffer.from('{}'), MediaType.OciEmpty);
const tagOf = (digest: string) => digest.replace(':', '-');

async function referrer(target: Target, subject: Descriptor, artifactType: string): Promise<Descriptor> {
  const layer = blob(randomBytes(300), artifactType);
  for (const b of [EMPTY, layer]) await target.push(b.desc, b.data);
  const manifest = blob(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType, config: EMPTY.desc, layers: [layer.desc],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size }, annotations: { 'org.example.kind': artifactType },
  })), MediaType.OciManifest);
  await target.push(manifest.desc, manifest.data);
  const index = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ ...manifest.desc, artifactType }] })), MediaType.OciIndex);
  await target.push(index.desc, index.data);
  await target.tag(index.desc, tagOf(subject.digest));
  return manifest.desc;
}

async function cosignSig(target: Target, subject: Descriptor, suffix = 'sig'): Promise<Descriptor> {
  const payload = blob(Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': subject.digest } } })), 'application/vnd.dev.cosign.simplesigning.v1+json');
  const config = blob(Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [payload.desc.digest] } })), MediaType.OciConfig);
  for (const b of [config, payload]) await target.push(b.desc, b.data);
  const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: config.desc, layers: [{ ...payload.desc, annotations: { 'dev.cosignproject.cosign/signature': 'MEUC' } }] })), MediaType.OciManifest);
  await target.push(manifest.desc, manifest.data);
  await target.tag(manifest.desc, `${tagOf(subject.digest)}.${suffix}`);
  return manifest.desc;
}

/** The referrers a tag-schema index lists for `digest` in `repo`, and the cosign .sig there, read plainly. */
async function attachedIn(client: RegistryClient, repo: string, digest: string): Promise<{ referrers: string[]; sig?: string }> {
  const target = client.repository(parseReference(repo));
  const index = await target.resolve(tagOf(digest)).catch(() => undefined);
  const referrers = index ? (JSON.parse(Buffer.from(await fetchBytes(target, index)).toString()) as { manifests: Descriptor[] }).manifests.map((m) => m.digest) : [];
  const sig = await target.resolve(`${tagOf(digest)}.sig`).then((d) => d.digest, () => undefined);
  return { referrers: referrers.sort(), sig };
}

describe('signatures, SBOMs and attestations travel with bundles', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let work: string;
  let client: RegistryClient;
  let bundleRef: string;
  let bundleIndex: Descriptor;
  /** subject digest -> what must be attached to it wherever the bundle goes */
  const expected = new Map<string, { referrers: string[]; sig?: string }>();
  let arm64: Descriptor;
  let installerAtt: Descriptor;
  let installerDigest: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-referrers-'));
    client = new RegistryClient();
    const tool = client.repository(parseReference(`${a.host}/src/tool`));
    const web = client.repository(parseReference(`${a.host}/src/web`));
    // An installer with an SBOM that is itself signed, and a cosign signature.
    const installer = await pushImage(tool, { layers: [2000] });
    const sbom = await referrer(tool, installer, 'application/spdx+json');
    const sbomSig = await referrer(tool, sbom, 'application/vnd.cncf.notary.signature');
    const installerSig = await cosignSig(tool, installer);
    installerAtt = await cosignSig(tool, installer, 'att');
    installerDigest = installer.digest;
    // A multi-arch image: a signature on the index and one on each platform manifest.
    const multi = await pushMultiArch(web);
    const platforms = (JSON.parse(Buffer.from(await fetchBytes(web, multi)).toString()) as { manifests: Descriptor[] }).manifests;
    arm64 = platforms.find((p) => p.platform?.architecture === 'arm64')!;
    const multiSig = await cosignSig(web, multi);
    expected.set(installer.digest, { referrers: [sbom.digest], sig: installerSig.digest });
    expected.set(sbom.digest, { referrers: [sbomSig.digest] });
    expected.set(multi.digest, { referrers: [], sig: multiSig.digest });
    for (const p of platforms) expected.set(p.digest, { referrers: [(await referrer(web, p, 'application/vnd.cncf.notary.signature')).digest] });

    const bundle = { schemaVersion: 'v1.2.0', name: 'signed', version: '1.0.0', invocationImages: [{ imageType: 'oci', image: `${a.host}/src/tool@${installer.digest}` }], images: { web: { imageType: 'oci', image: `${a.host}/src/web@${multi.digest}` } } };
    await writeFile(join(work, 'bundle.json'), JSON.stringify(bundle));
    bundleRef = `${a.host}/acme/signed:1.0.0`;
    const push = await runCli(['--json', 'push', join(work, 'bundle.json'), '--target', bundleRef]);
    expect(push.code, push.stderr).toBe(0);
    // What Porter's --sign-bundle adds: a signature on the bundle's index.
    const acme = client.repository(parseReference(`${a.host}/acme/signed`));
    bundleIndex = await acme.resolve('1.0.0');
    expected.set(bundleIndex.digest, { referrers: [(await referrer(acme, bundleIndex, 'application/vnd.cncf.notary.signature')).digest], sig: (await cosignSig(acme, bundleIndex)).digest });
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await Promise.all([a?.stop(), b?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  const expectAllAttached = async (repo: string, except: string[] = []) => {
    for (const [digest, want] of expected) {
      if (except.includes(digest)) continue;
      expect(await attachedIn(client, repo, digest), `${repo}: attached to ${digest}`).toEqual({ referrers: [...want.referrers].sort(), sig: want.sig });
    }
  };

  it('push carries what is attached to each image into the bundle repository', async () => {
    await expectAllAttached(`${a.host}/acme/signed`, [bundleIndex.digest]);
  });

  it('copy carries everything attached to the bundle and its images; a second copy moves nothing', async () => {
    const first = await runCli(['--json', 'copy', bundleRef, `${b.host}/relo/signed:1.0.0`]);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).stats.attached).toBe([...expected.values()].reduce((n, e) => n + e.referrers.length + (e.sig ? 1 : 0), 0) + 1); // + the .att
    await expectAllAttached(`${b.host}/relo/signed`);
    // cosign's attestation tag travels too, under its own name.
    const att = await client.repository(parseReference(`${b.host}/relo/signed`)).resolve(`${tagOf(installerDigest)}.att`);
    expect(att.digest).toBe(installerAtt.digest);
    const again = await runCli(['--json', 'copy', bundleRef, `${b.host}/relo/signed:1.0.0`]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).stats.objectsCopied).toBe(0);
    await expectAllAttached(`${b.host}/relo/signed`);
  });

  it('merges into a tag-schema index already at the destination, losing none of its entries', async () => {
    const repo = client.repository(parseReference(`${b.host}/merged/signed`));
    const seed = await runCli(['copy', '--no-referrers', bundleRef, `${b.host}/merged/signed:1.0.0`]);
    expect(seed.code, seed.stderr).toBe(0);
    const theirs = await referrer(repo, bundleIndex, 'application/vnd.example.other');
    const res = await runCli(['copy', bundleRef, `${b.host}/merged/signed:1.0.0`]);
    expect(res.code, res.stderr).toBe(0);
    const got = await attachedIn(client, `${b.host}/merged/signed`, bundleIndex.digest);
    expect(got.referrers).toEqual([...expected.get(bundleIndex.digest)!.referrers, theirs.digest].sort());
  });

  it('--no-referrers leaves them behind', async () => {
    const res = await runCli(['--json', 'copy', '--no-referrers', bundleRef, `${b.host}/bare/signed:1.0.0`]);
    expect(res.code, res.stderr).toBe(0);
    const tags = await client.repository(parseReference(`${b.host}/bare/signed`)).tags();
    expect(tags).toEqual(['1.0.0']);
  });

  it('--platform drops the referrers of the platforms filtered out and names the images whose new index is unsigned', async () => {
    const res = await runCli(['--json', 'copy', '--platform', 'linux/amd64', bundleRef, `${b.host}/amd/signed:1.0.0`]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    const whats = (out.detached as Array<{ what: string }>).map((d) => d.what).sort();
    expect(whats).toEqual(['bundle', `${a.host}/src/web@${[...expected.keys()][2]}`].sort());
    expect(res.stderr).toMatch(/has no signature of its own/);
    expect(await attachedIn(client, `${b.host}/amd/signed`, arm64.digest)).toEqual({ referrers: [], sig: undefined });
    const amd = [...expected.keys()].find((d) => d !== arm64.digest && expected.get(d)!.referrers.length === 1 && !expected.get(d)!.sig && d !== [...expected.keys()][1]);
    expect((await attachedIn(client, `${b.host}/amd/signed`, amd!)).referrers.length).toBe(1);
  });

  it('archive and import carry them through a thick bundle, into a registry and an OCI layout', async () => {
    const file = join(work, 'signed.tgz');
    const arch = await runCli(['archive', bundleRef, file]);
    expect(arch.code, arch.stderr).toBe(0);
    // The attached tags, written as their copies finish, still give the same bytes every time.
    const again = join(work, 'signed-again.tgz');
    expect((await runCli(['archive', bundleRef, again])).code).toBe(0);
    expect((await readFile(again)).equals(await readFile(file))).toBe(true);
    const imp = await runCli(['--json', 'import', file, '--target', `${b.host}/imported/signed:1.0.0`]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(JSON.parse(imp.stdout).digest).toBe(bundleIndex.digest);
    await expectAllAttached(`${b.host}/imported/signed`);

    // Into a layout, and from there on to a registry: nothing is lost on the way.
    const dir = join(work, 'layout');
    const toLayout = await runCli(['import', file, '--target', `oci:${dir}:1.0.0`]);
    expect(toLayout.code, toLayout.stderr).toBe(0);
    const layout = await OciLayout.open(dir, { create: false });
    const tags = (await layout.list()).map((d) => d.annotations?.['org.opencontainers.image.ref.name']);
    expect(tags).toContain(`${tagOf(bundleIndex.digest)}.sig`);
    const back = await runCli(['copy', `oci:${dir}:1.0.0`, `${b.host}/from-layout/signed:1.0.0`]);
    expect(back.code, back.stderr).toBe(0);
    await expectAllAttached(`${b.host}/from-layout/signed`);
  });
});
