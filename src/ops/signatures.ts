import type { KeyObject, X509Certificate } from 'node:crypto';
import type { ReadOnlyTarget } from '../content/target.js';
import { fetchBytes } from '../content/read.js';
import { CnabOciError } from '../oci/errors.js';
import { isImageManifest } from '../oci/mediatypes.js';
import { ManifestSchema, type Descriptor, type Manifest } from '../oci/schemas.js';
import { classicSignatureManifest, cosignTag, holdsSignatureBy, CosignMediaType, referrerSignatureManifest, signPayload, verifyCosignManifest } from '../signing/cosign.js';
import { isNotationSignature, verifyNotationManifest } from '../signing/notation.js';
import type { BlobReader, SignatureCheck } from '../signing/result.js';
import { simpleSigningPayload } from '../signing/simple-signing.js';
import { readSignatureTag, storeSignatureManifest } from '../signing/cosign-tags.js';
import { discoverAttached, recordAttached, TagIndex, type Attached } from '../transfer/referrers.js';
import type { OpenedLocation } from './locations.js';
import { bundleSubjects, pullBundle, type BundleSubject } from './pull.js';
import { parseJsonOrUndefined } from '../util/json.js';

/** What Porter signs (the bundle's index) and, on request, each of the bundle's images. */
export type SignedArtifact = BundleSubject;

/** The bundle's index, then (with `images`) every image of the bundle as its index lists it. */
export async function bundleArtifacts(location: OpenedLocation, images: boolean): Promise<SignedArtifact[]> {
  return bundleSubjects(await pullBundle(location), images);
}

export type SignatureForm = 'cosign' | 'oci-1-1';

export interface SignResult extends SignedArtifact {
  /** The signature manifest that now holds the signature. */
  signature: Descriptor;
  /** The cosign tag it is under (classic form). */
  tag?: string;
  /** false: the same signature was already there. */
  added: boolean;
}

/**
 * Sign each artifact with a cosign key, as `cosign sign --key` does: a simple-signing payload
 * naming the repository and the digest, signed with ECDSA P-256; added to the `.sig` tag beside
 * it (classic) or pushed as an OCI 1.1 referrer, recorded where the registry lacks the API.
 */
export async function signArtifacts(location: OpenedLocation, artifacts: SignedArtifact[], key: KeyObject, form: SignatureForm = 'cosign'): Promise<SignResult[]> {
  const target = location.target;
  const results: SignResult[] = [];
  for (const artifact of artifacts) {
    const payload = simpleSigningPayload(location.relocationName, artifact.descriptor.digest);
    const layer = { payload, signature: signPayload(payload, key) };
    if (form === 'oci-1-1') {
      const built = referrerSignatureManifest(artifact.descriptor, layer);
      await storeSignatureManifest(target, built);
      await recordAttached(target, artifact.descriptor, [{ descriptor: built.manifestDescriptor }]);
      results.push({ ...artifact, signature: built.manifestDescriptor, added: true });
      continue;
    }
    const tag = cosignTag(artifact.descriptor.digest, 'sig');
    const existing = await readSignatureTag(target, tag);
    if (existing && holdsSignatureBy(existing.manifest, payload, key)) {
      results.push({ ...artifact, signature: existing.descriptor, tag, added: false });
      continue;
    }
    const built = classicSignatureManifest(layer, existing);
    await storeSignatureManifest(target, built);
    await target.tag(built.manifestDescriptor, tag);
    results.push({ ...artifact, signature: built.manifestDescriptor, tag, added: true });
  }
  return results;
}

/** A key (cosign) or a certificate (Notation) to check signatures with. */
export type Verifier = { key: KeyObject } | { certificate: X509Certificate };

export interface VerifyResult extends SignedArtifact {
  ok: boolean;
  /** Every signature found that is of the verifier's kind, checked. */
  checks: SignatureCheck[];
}

/**
 * Check each artifact's signatures: those attached to it (referrers, the `.sig` tag) that are of
 * the verifier's kind. An artifact passes when one of them verifies.
 */
export async function verifyArtifacts(target: ReadOnlyTarget, artifacts: SignedArtifact[], verifier: Verifier): Promise<VerifyResult[]> {
  const readBlob: BlobReader = (d) => fetchBytes(target, d as Descriptor);
  const tags = new TagIndex();
  return Promise.all(artifacts.map(async (artifact) => {
    const checks: SignatureCheck[] = [];
    for (const attached of await discoverAttached(target, artifact.descriptor, tags)) {
      if (!isImageManifest(attached.descriptor.mediaType)) continue;
      const bytes = await fetchBytes(target, attached.descriptor);
      const manifest = ManifestSchema.safeParse(parseJsonOrUndefined(bytes)).data;
      if (!manifest) continue;
      if ('key' in verifier && isCosignSignature(attached, manifest)) {
        checks.push(...(await verifyCosignManifest(bytes, readBlob, { publicKey: verifier.key, subjectDigest: artifact.descriptor.digest })));
      } else if ('certificate' in verifier && isNotationSignature(manifest)) {
        checks.push(await verifyNotationManifest(bytes, readBlob, { certificate: verifier.certificate, subject: artifact.descriptor }));
      }
    }
    return { ...artifact, ok: checks.some((c) => c.ok), checks };
  }));
}

/** A `.sig` tag, or a referrer holding a simple-signing payload or a Sigstore bundle. */
function isCosignSignature(attached: Attached, manifest: Manifest): boolean {
  if (attached.tag?.endsWith('.sig')) return true;
  return (manifest.layers ?? []).some((l) => l.mediaType === CosignMediaType.SimpleSigning || l.mediaType === CosignMediaType.SigstoreBundleV03);
}

/** Some requested artifact has no valid signature. Exit status 1. */
export class VerificationFailedError extends CnabOciError {}

/** One line on why an artifact failed: no signature of that kind, or each signature's reason. */
export function failureReason(result: VerifyResult, kind: string): string {
  if (result.checks.length === 0) return `no ${kind} signature`;
  return [...new Set(result.checks.map((c) => c.reason ?? 'does not verify'))].join('; ');
}
