import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../../src/content/layout.js';
import { fetchBytes } from '../../src/content/read.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { parseReference } from '../../src/oci/reference.js';
import type { Descriptor } from '../../src/oci/schemas.js';
import { RegistryClient } from '../../src/registry/client.js';
import { copyGraph } from '../../src/transfer/copy.js';
import { runCli } from '../helpers/cli.js';
import { pushImage, pushMultiArch } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'signatures');
const NOTATION_LAYOUT = join(FIXTURES, 'notation-jws-oci-layout', 'e2e-valid-multiple-signatures');
const NOTATION_SUBJECT = 'sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9';
const KEYS = join(FIXTURES, 'cosign-encrypted-keys-password-hello');

/** A registry's manifest and blob endpoints read with plain fetch: an independent reader. */
async function rawGet(host: string, repo: string, kind: 'manifests' | 'blobs', ref: string): Promise<Buffer> {
  const res = await fetch(`http://${host}/v2/${repo}/${kind}/${ref}`, { headers: { accept: `${MediaType.OciManifest}, ${MediaType.OciIndex}` } });
  if (res.status !== 200) throw new Error(`${kind}/${ref}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

describe('sign and verify, cosign- and Notation-compatible, through any chain of copies', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let work: string;
  let client: RegistryClient;
  let bundleRef: string;
  const env = { COSIGN_PASSWORD: 'hello' };
  let platformArtifacts: Array<{ what: string; descriptor: Descriptor }> = [];

  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-signing-'));
    client = new RegistryClient();
    // Notation's own layout: an image with two JWS signatures (one listed only in index.json).
    const layout = await OciLayout.open(NOTATION_LAYOUT, { create: false });
    const notary = client.repository(parseReference(`${a.host}/src/notary`));
    const subject = await layout.resolve('v1');
    expect(subject.digest).toBe(NOTATION_SUBJECT);
    const stats = await copyGraph(layout, notary, subject, { referrers: true });
    expect(stats.attached).toBe(2);
    // And one image of ours.
    const mine = client.repository(parseReference(`${a.host}/src/mine`));
    const image = await pushImage(mine, { layers: [4000] });
    const multi = await pushMultiArch(client.repository(parseReference(`${a.host}/src/multi`)));
    const bundle = { schemaVersion: 'v1.2.0', name: 'signme', version: '0.1.0', invocationImages: [{ imageType: 'oci', image: `${a.host}/src/mine@${image.digest}` }], images: { notary: { imageType: 'oci', image: `${a.host}/src/notary@${NOTATION_SUBJECT}` }, multi: { imageType: 'oci', image: `${a.host}/src/multi@${multi.digest}` } } };
    await writeFile(join(work, 'bundle.json'), JSON.stringify(bundle));
    bundleRef = `${a.host}/acme/signme:0.1.0`;
    const push = await runCli(['push', join(work, 'bundle.json'), '--target', bundleRef]);
    expect(push.code, push.stderr).toBe(0);
    // Per-platform signatures, as `cosign sign --recursive` makes them, on the bundle's copy.
    const { openLocation } = await import('../../src/ops/locations.js');
    const { signArtifacts } = await import('../../src/ops/signatures.js');
    const { loadPrivateKey } = await import('../../src/signing/cosign-keys.js');
    const location = await openLocation(bundleRef, client, { create: false });
    const platforms = (JSON.parse(Buffer.from(await fetchBytes(location.target, multi)).toString()) as { manifests: Descriptor[] }).manifests;
    platformArtifacts = platforms.map((p) => ({ what: `${p.platform!.os}/${p.platform!.architecture}`, descriptor: p }));
    const key = loadPrivateKey(await readFile(join(KEYS, 'pemsigstorekey.key'), 'utf8'), 'hello');
    await signArtifacts(location, platformArtifacts, key);
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await Promise.all([a?.stop(), b?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('verifies Notation\'s real signatures after they travelled into registry:2 with the image, and refuses another certificate', async () => {
    const cert = join(FIXTURES, 'notation-jws-oci-layout', 'e2e.crt');
    const ok = await runCli(['--json', 'verify', bundleRef, '--images', '--certificate', cert]);
    // The bundle index and our own image carry no Notation signature: only the notary image verifies.
    const out = JSON.parse(ok.stdout);
    const notary = out.artifacts.find((x: { what: string }) => x.what.includes('/src/notary'));
    expect(notary.ok).toBe(true);
    expect(notary.checks.filter((c: { ok: boolean }) => c.ok)[0].signer).toMatch(/CN=e2e/);
    expect(ok.code).toBe(1);
    expect(ok.stderr).toMatch(/bundle sha256:[0-9a-f]{64}: no Notation signature/);
    const other = await runCli(['--json', 'verify', bundleRef, '--images', '--certificate', join(FIXTURES, 'notation-jws-oci-layout', 'new_e2e.crt')]);
    expect(other.code).toBe(1);
    const refused = JSON.parse(other.stdout).artifacts.find((x: { what: string }) => x.what.includes('/src/notary'));
    expect(refused.ok).toBe(false);
    expect(refused.checks.map((c: { reason: string }) => c.reason).join(' ')).toMatch(/not by the given certificate/);
    expect(other.stderr).toMatch(/have no valid Notation signature/);
  });

  it('verifies cosign 3.0.4\'s real .sig and Sigstore-bundle signatures pushed into registry:2; refuses them tampered or with another key', async () => {
    const classic = join(FIXTURES, 'cosign-classic-sig-v3.0.4');
    const repo = client.repository(parseReference(`${a.host}/vectors/classic`));
    const put = async (bytes: Buffer, mediaType: string) => {
      const desc: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.length };
      await repo.push(desc, bytes);
      return desc;
    };
    await put(await readFile(join(classic, 'config.json')), MediaType.OciConfig);
    const payload = await readFile(join(classic, 'payload.json'));
    await put(payload, 'application/vnd.dev.cosign.simplesigning.v1+json');
    const sig = await put(await readFile(join(classic, 'sig-manifest.json')), MediaType.OciManifest);
    const subject = 'sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268';
    await repo.tag(sig, `${subject.replace(':', '-')}.sig`);
    const { verifyArtifacts } = await import('../../src/ops/signatures.js');
    const { loadPublicKey } = await import('../../src/signing/cosign-keys.js');
    const artifact = { what: 'vector', descriptor: { mediaType: MediaType.OciManifest, digest: subject, size: 1 } as Descriptor };
    const key = loadPublicKey(await readFile(join(classic, 'cosign.pub'), 'utf8'));
    const [good] = await verifyArtifacts(repo, [artifact], { key });
    expect(good!.ok).toBe(true);
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const [wrong] = await verifyArtifacts(repo, [artifact], { key: otherKey });
    expect(wrong!.ok).toBe(false);
    expect(wrong!.checks[0]!.reason).toMatch(/does not verify/);

    // Tampered: one byte of the payload changed, the manifest rewritten to name it.
    const forged = Buffer.from(payload);
    forged.writeUInt8(forged.readUInt8(forged.length - 3) ^ 1, forged.length - 3);
    const forgedDesc = await put(forged, 'application/vnd.dev.cosign.simplesigning.v1+json');
    const manifest = JSON.parse(await readFile(join(classic, 'sig-manifest.json'), 'utf8'));
    manifest.layers[0] = { ...manifest.layers[0], digest: forgedDesc.digest, size: forgedDesc.size };
    await repo.tag(await put(Buffer.from(JSON.stringify(manifest)), MediaType.OciManifest), `${subject.replace(':', '-')}.sig`);
    const [tampered] = await verifyArtifacts(repo, [artifact], { key });
    expect(tampered!.ok).toBe(false);

    // cosign 3's default: a Sigstore bundle referrer and go-containerregistry's referrers-tag index.
    const sigstore = join(FIXTURES, 'cosign-bundle-referrer-v3.0.4');
    const bundleRepo = client.repository(parseReference(`${a.host}/vectors/bundle`));
    await bundleRepo.push({ mediaType: MediaType.OciEmpty, digest: digestOf('{}'), size: 2 }, Buffer.from('{}'));
    const blob = await readFile(join(sigstore, 'bundle-sigstore.json'));
    await bundleRepo.push({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: digestOf(blob), size: blob.length }, blob);
    const referring = await readFile(join(sigstore, 'bundle-referring-manifest.json'));
    await bundleRepo.push({ mediaType: MediaType.OciManifest, digest: digestOf(referring), size: referring.length }, referring);
    const index = await readFile(join(sigstore, 'bundle-referrers-index.json'));
    const indexDesc = { mediaType: MediaType.OciIndex, digest: digestOf(index), size: index.length } as Descriptor;
    await bundleRepo.push(indexDesc, index);
    const bundleSubject = 'sha256:d7d5640c741c60b47fa4b5530daa20a6469b55754a89dd42adbadadb59f9093c';
    await bundleRepo.tag(indexDesc, bundleSubject.replace(':', '-'));
    const bundleArtifact = { what: 'vector', descriptor: { mediaType: MediaType.OciIndex, digest: bundleSubject, size: 928 } as Descriptor };
    const bundleKey = loadPublicKey(await readFile(join(sigstore, 'bundle-cosign.pub'), 'utf8'));
    expect((await verifyArtifacts(bundleRepo, [bundleArtifact], { key: bundleKey }))[0]!.ok).toBe(true);
    expect((await verifyArtifacts(bundleRepo, [bundleArtifact], { key }))[0]!.ok).toBe(false);
  });

  it('signs with cosign\'s encrypted key, in both forms, in what an independent reader verifies with the public key', async () => {
    const key = join(KEYS, 'pemsigstorekey.key');
    const pub = await readFile(join(KEYS, 'pemsigstorekey.pub.derived.pem'), 'utf8');
    const classic = await runCli(['--json', 'sign', bundleRef, '--key', key, '--images'], { env });
    expect(classic.code, classic.stderr).toBe(0);
    const signed = JSON.parse(classic.stdout).signed as Array<{ what: string; digest: string; tag: string }>;
    expect(signed).toHaveLength(4);
    for (const s of signed) {
      const repo = 'acme/signme'; // the bundle's repository holds its images and their signatures
      const manifest = JSON.parse((await rawGet(a.host, repo, 'manifests', s.tag)).toString());
      const layer = manifest.layers.at(-1);
      const payload = await rawGet(a.host, repo, 'blobs', layer.digest);
      expect(JSON.parse(payload.toString()).critical.image['docker-manifest-digest']).toBe(s.digest);
      expect(verify('sha256', payload, createPublicKey(pub), Buffer.from(layer.annotations['dev.cosignproject.cosign/signature'], 'base64'))).toBe(true);
    }
    // Signing again adds nothing; the OCI 1.1 form goes beside it as a referrer.
    const again = await runCli(['--json', 'sign', bundleRef, '--key', key], { env });
    expect(JSON.parse(again.stdout).signed[0].added).toBe(false);
    const referrer = await runCli(['--json', 'sign', bundleRef, '--key', join(KEYS, 'pemcosignkey.key'), '--format', 'oci-1-1', '--password-stdin'], { input: 'hello\n', env: { COSIGN_PASSWORD: undefined } });
    expect(referrer.code, referrer.stderr).toBe(0);
    const ok = await runCli(['verify', bundleRef, '--images', '--key', join(KEYS, 'pemsigstorekey.pub.derived.pem')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/verified bundle sha256:/);
    const byReferrer = await runCli(['verify', bundleRef, '--key', join(KEYS, 'pemcosignkey.pub.derived.pem')]);
    expect(byReferrer.code, byReferrer.stderr).toBe(0);
  });

  it('keeps every signature verifiable through copy, a layout, a thick archive and back; a second copy moves nothing', async () => {
    const pubKey = join(KEYS, 'pemsigstorekey.pub.derived.pem');
    const cert = join(FIXTURES, 'notation-jws-oci-layout', 'e2e.crt');
    const copied = `${b.host}/relo/signme:0.1.0`;
    // The destination already holds a signature of its own under the same .sig tag: it stays.
    expect((await runCli(['copy', '--no-referrers', bundleRef, copied])).code).toBe(0);
    const theirs = await runCli(['sign', copied, '--key', join(KEYS, 'pemcosignkey.key')], { env });
    expect(theirs.code, theirs.stderr).toBe(0);
    const copy = await runCli(['copy', bundleRef, copied]);
    expect(copy.code, copy.stderr).toBe(0);
    const sigTag = `${(await client.repository(parseReference(copied)).resolve('0.1.0')).digest.replace(':', '-')}.sig`;
    const merged = JSON.parse((await rawGet(b.host, 'relo/signme', 'manifests', sigTag)).toString());
    expect(merged.layers).toHaveLength(2);
    const stillTheirs = await runCli(['verify', copied, '--key', join(KEYS, 'pemcosignkey.pub.derived.pem')]);
    expect(stillTheirs.code, stillTheirs.stderr).toBe(0);
    const dir = join(work, 'layout');
    expect((await runCli(['copy', copied, `oci:${dir}:0.1.0`])).code).toBe(0);
    const file = join(work, 'signme.tgz');
    const archived = await runCli(['archive', `oci:${dir}:0.1.0`, file]);
    expect(archived.code, archived.stderr).toBe(0);
    const imported = `${b.host}/imported/signme:0.1.0`;
    const imp = await runCli(['import', file, '--target', imported]);
    expect(imp.code, imp.stderr).toBe(0);
    const { openLocation } = await import('../../src/ops/locations.js');
    const { verifyArtifacts } = await import('../../src/ops/signatures.js');
    const { loadPublicKey } = await import('../../src/signing/cosign-keys.js');
    const key = loadPublicKey(await readFile(pubKey, 'utf8'));
    for (const ref of [copied, `oci:${dir}:0.1.0`, imported]) {
      const cosign = await runCli(['verify', ref, '--images', '--key', pubKey]);
      expect(cosign.code, `${ref}: ${cosign.stderr}`).toBe(0);
      // Each platform of the multi-arch image has its own signature, and it travelled too.
      const location = await openLocation(ref, client, { create: false });
      const results = await verifyArtifacts(location.target, platformArtifacts, { key });
      expect(results.map((r) => r.ok), ref).toEqual(platformArtifacts.map(() => true));
      const notation = await runCli(['--json', 'verify', ref, '--images', '--certificate', cert]);
      const notary = JSON.parse(notation.stdout).artifacts.find((x: { what: string }) => x.what.includes('/src/notary'));
      expect(notary.ok, ref).toBe(true);
    }
    const again = await runCli(['--json', 'copy', bundleRef, copied]);
    expect(JSON.parse(again.stdout).stats.objectsCopied).toBe(0);
    const listed = await runCli(['--json', 'inspect', imported, '--referrers']);
    const bundleAttached = JSON.parse(listed.stdout).referrers[0].attached as Array<{ type: string }>;
    expect(bundleAttached.map((x) => x.type).sort()).toEqual(['application/vnd.dev.cosign.artifact.sig.v1+json', 'cosign signature']);
  }, 240_000);

  it('refuses a wrong password, a SEC1 key and a missing password with one line each', async () => {
    const wrong = await runCli(['sign', bundleRef, '--key', join(KEYS, 'pemsigstorekey.key')], { env: { COSIGN_PASSWORD: 'nope' } });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/wrong password/);
    expect(wrong.stderr).not.toContain('nope');
    const sec1 = await runCli(['sign', bundleRef, '--key', join(KEYS, 'pemcosigneckey.key')], { env });
    expect(sec1.code).toBe(2);
    const none = await runCli(['sign', bundleRef, '--key', join(KEYS, 'pemsigstorekey.key')], { env: { COSIGN_PASSWORD: undefined } });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/COSIGN_PASSWORD/);
    for (const r of [wrong, sec1, none]) expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
