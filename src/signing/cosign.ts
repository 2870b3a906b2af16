import { sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { digestOf, parseDigest, referrersTag } from '../oci/digest.js';
import { firstLine, InvalidContentError } from '../oci/errors.js';
import { MediaType } from '../oci/mediatypes.js';
import { ManifestSchema, type Descriptor, type Manifest } from '../oci/schemas.js';
import { keyFingerprint, publicKeyOf } from './cosign-keys.js';
import { ConfigFileSchema, EMPTY_SIGNATURES, ggcrManifest, mutateAppend } from './ggcr.js';
import { readSignatureLayer, SigningInputError, type BlobReader, type SignatureCheck, type SignatureFormat } from './result.js';
import { parseSimpleSigningPayload, SIMPLE_SIGNING_TYPE, type SimpleSigningPayload } from './simple-signing.js';
import { parseJsonAs } from '../util/json.js';

/**
 * cosign's signature manifests, built and checked without a registry. Built byte for byte as
 * cosign writes them through go-containerregistry (see ggcr.ts), because their digests are what
 * a registry and a second signer see.
 */

export const CosignMediaType = {
  SimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  /** artifactType (and config mediaType) of a simple-signing signature pushed as an OCI 1.1 referrer. */
  ArtifactSig: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  SigstoreBundleV03: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const IN_TOTO_STATEMENTS = new Set(['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1']);
/** The predicate cosign 3 puts in the statement of a signature (attestations carry their own). */
const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/** cosign's tag suffixes: signatures, attestations, SBOMs. */
export const COSIGN_SUFFIXES = ['sig', 'att', 'sbom'] as const;

/** `sha256-<hex>.sig`: the tag cosign attaches signatures (`att`: attestations, `sbom`) under. */
export function cosignTag(subjectDigest: string, suffix: (typeof COSIGN_SUFFIXES)[number]): string {
  return `${referrersTag(subjectDigest)}.${suffix}`;
}

/** ECDSA P-256 SHA-256 over the exact payload bytes, ASN.1 DER, base64: cosign's signature annotation. */
export function signPayload(payload: Uint8Array, key: KeyObject): string {
  if (key.type !== 'private' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new SigningInputError('signing needs an ECDSA P-256 private key');
  }
  return sign('sha256', payload, { key, dsaEncoding: 'der' }).toString('base64');
}

interface SignatureLayer {
  payload: Uint8Array;
  /** base64 DER signature, as `signPayload` returns it. */
  signature: string;
}

export interface SignatureManifest {
  manifest: Uint8Array;
  manifestDescriptor: Descriptor;
  config: Uint8Array;
  /** Blobs the manifest needs that were not there before (payload, config), to push before it. */
  blobs: Uint8Array[];
  /** false when the signature was already on the manifest: nothing to push. */
  added: boolean;
}

function blobDescriptor(mediaType: string, bytes: Uint8Array, extra?: Partial<Descriptor>): Descriptor {
  return { mediaType, size: bytes.length, digest: digestOf(bytes), ...extra };
}

function signatureDescriptor(layer: SignatureLayer): Descriptor {
  return blobDescriptor(CosignMediaType.SimpleSigning, layer.payload, { annotations: { [COSIGN_SIGNATURE_ANNOTATION]: layer.signature } });
}

function finish(manifest: Manifest, config: Uint8Array, blobs: Uint8Array[], added: boolean): SignatureManifest {
  const bytes = Buffer.from(ggcrManifest(manifest), 'utf8');
  const extra = manifest.artifactType ? { artifactType: manifest.artifactType } : undefined;
  return { manifest: bytes, manifestDescriptor: blobDescriptor(manifest.mediaType ?? MediaType.OciManifest, bytes, extra), config, blobs, added };
}

/**
 * The `sha256-<hex>.sig` manifest with this signature on it, as cosign writes it: from scratch, or
 * onto the manifest (and config) already under that tag, keeping its layers. A layer with the same
 * payload and signature is not added twice (`added: false`, the existing bytes returned).
 */
export function classicSignatureManifest(signatureLayer: SignatureLayer, existing?: { manifest: Uint8Array; config: Uint8Array }): SignatureManifest {
  const layer = signatureDescriptor(signatureLayer);
  if (!existing) {
    const built = mutateAppend(EMPTY_SIGNATURES, layer);
    return finish(built.manifest, built.config, [signatureLayer.payload, built.config], true);
  }
  const manifest = parseJsonAs(existing.manifest, ManifestSchema, 'the existing .sig manifest');
  if (digestOf(existing.config) !== manifest.config.digest) {
    throw new InvalidContentError(`the existing .sig config does not match its manifest's config digest ${manifest.config.digest}`);
  }
  const present = (manifest.layers ?? []).some(
    (l) => l.digest === layer.digest && l.annotations?.[COSIGN_SIGNATURE_ANNOTATION] === signatureLayer.signature,
  );
  if (present) {
    const manifestDescriptor = blobDescriptor(manifest.mediaType ?? MediaType.OciManifest, existing.manifest);
    return { manifest: existing.manifest, manifestDescriptor, config: existing.config, blobs: [], added: false };
  }
  const config = parseJsonAs(existing.config, ConfigFileSchema, 'the existing .sig config');
  const built = mutateAppend({ manifest, config }, layer);
  return finish(built.manifest, built.config, [signatureLayer.payload, built.config], true);
}

/**
 * The same signature as an OCI 1.1 referrer of `subject`, as `cosign sign --registry-referrers-mode=oci-1-1`
 * writes it (pkg/oci/remote WriteSignaturesExperimentalOCI): the `.sig` image manifest with
 * config.mediaType set to the sig artifactType, `subject`, and (cosign 3) a top-level artifactType.
 * The config blob stays ggcr's image config: cosign does not use the `{}` empty descriptor here.
 */
export function referrerSignatureManifest(subject: Descriptor, signatureLayer: SignatureLayer): SignatureManifest {
  const built = mutateAppend(EMPTY_SIGNATURES, signatureDescriptor(signatureLayer));
  const manifest: Manifest = {
    ...built.manifest,
    config: { ...built.manifest.config, mediaType: CosignMediaType.ArtifactSig },
    // cosign takes the subject from a HEAD: only these three fields.
    subject: { mediaType: subject.mediaType, size: subject.size, digest: subject.digest },
    artifactType: CosignMediaType.ArtifactSig,
  };
  return finish(manifest, built.config, [signatureLayer.payload, built.config], true);
}

// ---- verification ----

const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64');

/** The parts of a Sigstore bundle (v0.3) a key-based check reads. */
const BundleSchema = z.object({
  mediaType: z.string().startsWith('application/vnd.dev.sigstore.bundle'),
  dsseEnvelope: z
    .object({
      payload: Base64,
      payloadType: z.string(),
      signatures: z.array(z.object({ sig: Base64, keyid: z.string().optional() })).min(1),
    })
    .optional(),
});

const StatementSchema = z.object({
  _type: z.string(),
  subject: z.array(z.object({ name: z.string().optional(), digest: z.record(z.string(), z.string()) })),
  predicateType: z.string(),
});

/**
 * Whether a `.sig` manifest already holds `payload` signed by `key` (a private key's public
 * half is used): ECDSA signatures differ each time, so "already signed" is this, as cosign's
 * duplicate detector has it, not an identical layer.
 */
export function holdsSignatureBy(manifest: Uint8Array, payload: Uint8Array, key: KeyObject): boolean {
  const layers = parseJsonAs(manifest, ManifestSchema, 'the existing .sig manifest').layers ?? [];
  const digest = digestOf(payload);
  const publicKey = publicKeyOf(key);
  return layers.some((l) => {
    const signature = l.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
    return l.digest === digest && signature !== undefined && verifiesWith(payload, signature, publicKey);
  });
}

/** ECDSA-SHA256 with a DER signature (sigstore's ECDSAVerifier uses ecdsa.VerifyASN1: no raw r‖s). */
function verifiesWith(data: Uint8Array, signatureB64: string, key: KeyObject): boolean {
  if (!Base64.safeParse(signatureB64).success) return false;
  try {
    return verify('sha256', data, { key, dsaEncoding: 'der' }, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false; // malformed DER
  }
}

/** DSSE pre-authentication encoding: "DSSEv1 <len type> <type> <len body> <body>", lengths in bytes. */
function pae(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
}

/** What a signature must be checked against: the signer's key and the digest it must name. */
export interface CosignExpectation {
  publicKey: KeyObject;
  subjectDigest: string;
}

async function checkSimpleSigning(layer: Descriptor, readBlob: BlobReader, expect: CosignExpectation): Promise<SignatureCheck> {
  const fail = (reason: string, dockerReference?: string): SignatureCheck => ({ format: 'cosign', ok: false, reason, ...(dockerReference !== undefined && { dockerReference }) });
  const signature = layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
  if (!signature) return fail(`layer ${layer.digest} has no ${COSIGN_SIGNATURE_ANNOTATION} annotation`);
  const payload = await readSignatureLayer(layer, readBlob);
  if (!(payload instanceof Uint8Array)) return fail(payload.reason);
  if (!verifiesWith(payload, signature, expect.publicKey)) return fail('signature does not verify with the given key');
  let parsed: SimpleSigningPayload;
  try {
    parsed = parseSimpleSigningPayload(payload);
  } catch (err) {
    return fail(firstLine(err));
  }
  const { dockerReference, manifestDigest, type } = parsed;
  if (type !== SIMPLE_SIGNING_TYPE) return fail(`payload type is ${JSON.stringify(type)}, not ${JSON.stringify(SIMPLE_SIGNING_TYPE)}`, dockerReference);
  if (manifestDigest !== expect.subjectDigest) return fail(`payload is for ${manifestDigest} not ${expect.subjectDigest}`, dockerReference);
  return { format: 'cosign', ok: true, signer: keyFingerprint(expect.publicKey), dockerReference };
}

/**
 * A Sigstore bundle holding a DSSE envelope, checked with a key only: the envelope signature over
 * PAE and the in-toto statement's subject. Its transparency-log entry, inclusion proof and RFC 3161
 * timestamp are NOT checked: that needs Rekor's and the TSA's trusted keys and, for a full check,
 * the network. `cosign verify --key … --insecure-ignore-tlog` is the equivalent.
 */
async function checkBundle(layer: Descriptor, readBlob: BlobReader, expect: CosignExpectation): Promise<SignatureCheck> {
  const fail = (reason: string): SignatureCheck => ({ format: 'sigstore-bundle', ok: false, reason });
  const bytes = await readSignatureLayer(layer, readBlob);
  if (!(bytes instanceof Uint8Array)) return fail(bytes.reason);
  let bundle: z.infer<typeof BundleSchema>;
  try {
    bundle = parseJsonAs(bytes, BundleSchema, 'the Sigstore bundle');
  } catch (err) {
    return fail(firstLine(err));
  }
  const env = bundle.dsseEnvelope;
  if (!env) return fail('the Sigstore bundle holds no DSSE envelope');
  const body = Buffer.from(env.payload, 'base64');
  const signed = pae(env.payloadType, body);
  if (!env.signatures.some((s) => verifiesWith(signed, s.sig, expect.publicKey))) return fail('signature does not verify with the given key');
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) return fail(`DSSE payloadType is ${env.payloadType}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  let statement: z.infer<typeof StatementSchema>;
  try {
    statement = parseJsonAs(body, StatementSchema, 'the in-toto statement');
  } catch (err) {
    return fail(firstLine(err));
  }
  if (!IN_TOTO_STATEMENTS.has(statement._type)) return fail(`not an in-toto statement: _type ${statement._type}`);
  // An attestation signed with the same key names the image too, but is not a signature of it.
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE) return fail(`the bundle is an attestation (${statement.predicateType}), not a signature`);
  const { algorithm, hex } = parseDigest(expect.subjectDigest);
  if (!statement.subject.some((s) => s.digest[algorithm] === hex)) {
    const named = statement.subject.flatMap((s) => Object.entries(s.digest).map(([a, h]) => `${a}:${h}`)).join(', ') || 'no digest';
    return fail(`payload is for ${named} not ${expect.subjectDigest}`);
  }
  return { format: 'sigstore-bundle', ok: true, signer: keyFingerprint(expect.publicKey) };
}

/**
 * Every cosign signature on a signature manifest (a `.sig` tag, a simple-signing referrer or a
 * cosign 3 bundle referrer), checked against one key and the digest it must be for: one result
 * per signature layer. Blobs come through `readBlob`, and are checked against their digests again.
 */
export async function verifyCosignManifest(manifest: Uint8Array, readBlob: BlobReader, expect: CosignExpectation): Promise<SignatureCheck[]> {
  let m: Manifest;
  try {
    m = parseJsonAs(manifest, ManifestSchema, 'the signature manifest');
  } catch (err) {
    return [{ format: 'cosign', ok: false, reason: firstLine(err) }];
  }
  const checks: SignatureCheck[] = [];
  for (const layer of m.layers ?? []) {
    if (layer.mediaType === CosignMediaType.SimpleSigning) checks.push(await checkSimpleSigning(layer, readBlob, expect));
    else if (layer.mediaType === CosignMediaType.SigstoreBundleV03) checks.push(await checkBundle(layer, readBlob, expect));
  }
  if (checks.length > 0) return checks;
  const format: SignatureFormat = m.artifactType === CosignMediaType.SigstoreBundleV03 ? 'sigstore-bundle' : 'cosign';
  return [{ format, ok: false, reason: 'no signature layer' }];
}
