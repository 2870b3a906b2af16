import { describe, expect, it } from 'vitest';
import { fetchBytes } from '../../../src/content/read.js';
import { MemoryTarget } from '../../../src/content/memory.js';
import { digestOf } from '../../../src/oci/digest.js';
import type { Manifest } from '../../../src/oci/schemas.js';
import { classicSignatureManifest, COSIGN_SIGNATURE_ANNOTATION, type SignatureManifest } from '../../../src/signing/cosign.js';
import { mergeSignatureTag, storeSignatureManifest } from '../../../src/signing/cosign-tags.js';

const TAG = `sha256-${'ab'.repeat(32)}.sig`;
const layerOf = (name: string) => ({ payload: Buffer.from(`{"critical":{"identity":"${name}"}}`), signature: Buffer.from(`sig of ${name}`).toString('base64') });

/** A `.sig` manifest holding these signatures, stored in `target` as cosign adds them one by one. */
async function signatures(target: MemoryTarget, ...names: string[]): Promise<SignatureManifest> {
  let built: SignatureManifest | undefined;
  for (const name of names) {
    built = classicSignatureManifest(layerOf(name), built && { manifest: built.manifest, config: built.config });
    await storeSignatureManifest(target, built);
  }
  return built!;
}

async function signaturesUnder(target: MemoryTarget, tag: string): Promise<string[]> {
  const manifest = JSON.parse(Buffer.from(await fetchBytes(target, await target.resolve(tag))).toString()) as Manifest;
  return (manifest.layers ?? []).map((l) => Buffer.from(l.annotations![COSIGN_SIGNATURE_ANNOTATION]!, 'base64').toString());
}

describe('merging cosign .sig tags', () => {
  it('adds every signature the incoming tag has and the current one lacks, keeping the current ones', async () => {
    const target = new MemoryTarget('dst');
    const mine = await signatures(target, 'a');
    await target.tag(mine.manifestDescriptor, TAG);
    // The source was signed twice, by others: both signatures come over.
    const theirs = await signatures(target, 'b', 'c');
    await mergeSignatureTag(target, TAG, theirs.manifestDescriptor);
    expect(await signaturesUnder(target, TAG)).toEqual(['sig of a', 'sig of b', 'sig of c']);
    // Every blob the merged manifest names is there.
    const merged = JSON.parse(Buffer.from(await fetchBytes(target, await target.resolve(TAG))).toString()) as Manifest;
    for (const d of [merged.config, ...(merged.layers ?? [])]) expect(await target.exists(d)).toBe(true);
    expect(digestOf(await fetchBytes(target, merged.config))).toBe(merged.config.digest);
  });

  it('leaves the tag as it is when it already holds every incoming signature', async () => {
    const target = new MemoryTarget('dst');
    const both = await signatures(target, 'a', 'b');
    await target.tag(both.manifestDescriptor, TAG);
    const theirs = await signatures(target, 'b');
    await mergeSignatureTag(target, TAG, theirs.manifestDescriptor);
    expect((await target.resolve(TAG)).digest).toBe(both.manifestDescriptor.digest);
  });
});
