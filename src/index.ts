/**
 * cnab-oci, the library: everything the CLI does, as typed functions.
 *
 *   const client = dockerRegistryClient(); // Docker's credentials and TLS directories, as the CLI
 *   const destination = await openLocation('registry.example.com/acme/app:1.0.0', client, { create: true });
 *   const { bundle } = parseBundle(await readFile('bundle.json'), 'bundle.json');
 *   const result = await pushBundle(bundle, { destination, resolver: createImageResolver(client, []) });
 */
export * from './cnab/index.js';

// OCI model
export { MediaType, MANIFEST_ACCEPT, isImageManifest, isIndex, isManifestLike } from './oci/mediatypes.js';
export { digestOf, isDigest, parseDigest, referrersTag, verifyingStream, Digester, type Algorithm, type Digest } from './oci/digest.js';
export { Reference, parseReference, isLoopbackHost } from './oci/reference.js';
export { DescriptorSchema, ManifestSchema, IndexSchema, PlatformSchema, type Descriptor, type Manifest, type Index, type Platform } from './oci/schemas.js';
export { CnabOciError, InputError, InvalidDigestError, InvalidReferenceError, DigestMismatchError, NotFoundError, InvalidContentError } from './oci/errors.js';

// Content targets
export type { ReadOnlyTarget, Target, Mountable } from './content/target.js';
export { MemoryTarget } from './content/memory.js';
export { DiscardTarget } from './content/discard.js';
export { OciLayout } from './content/layout.js';
export { parseLocation, type Location } from './content/location.js';
export { fetchBytes, readAll, MAX_MANIFEST_SIZE } from './content/read.js';

// Registry client
export { RegistryClient, type RegistryClientOptions } from './registry/client.js';
export { dockerRegistryClient, dockerTransportOptions, DOCKER_CERTS_DIR } from './registry/docker-defaults.js';
export { Repository } from './registry/repository.js';
export type { TransportOptions } from './registry/transport.js';
export {
  anonymous,
  staticCredentials,
  dockerCredentialStore,
  defaultCredentialStore,
  containersAuthStore,
  chainCredentials,
  saveDockerCredential,
  eraseDockerCredential,
  dockerConfigPath,
  readDockerConfig,
  type Credential,
  type CredentialStore,
} from './registry/credentials.js';
export { RegistryError, AuthError, ManifestRejectedError, ConnectionError } from './registry/errors.js';

// Transfer and operations
export { copyGraph, CopySession, type CopyEvent, type CopyOptions, type CopyStats } from './transfer/copy.js';
export { fixupBundle, type FixupOptions, type FixupResult, type FieldChange, type ImageResolver } from './transfer/fixup.js';
export { pushBundle, type PushOptions, type PushResult } from './ops/push.js';
export { pullBundle, bundleSubjects, type BundleSource, type BundleSubject, type PullOptions, type PulledBundle } from './ops/pull.js';
export { convertOffline, writeConverted } from './ops/convert.js';
export { openLocation, withLocation, createImageResolver, type OpenedLocation, type LocationOptions } from './ops/locations.js';
export { copyBundle, type CopyBundleOptions, type CopyBundleResult, type DetachedAttachments, type FilteredImage } from './ops/copy.js';
export { parsePlatform, formatPlatform, platformMatches, type PlatformSpec } from './oci/platform.js';
export { archiveBundle, importBundle, THICK_BUNDLE, type ArchiveOptions, type ArchiveResult, type ImportOptions, type ImportResult } from './ops/archive.js';

// Signatures, SBOMs and attestations: what is attached to a manifest, and cosign/Notation signing
export { discoverAttached, recordAttached, type Attached } from './transfer/referrers.js';
export { bundleAttachments, listAttachments, type AttachmentInfo, type SubjectAttachments } from './ops/attachments.js';
export {
  bundleArtifacts,
  signArtifacts,
  verifyArtifacts,
  VerificationFailedError,
  type SignedArtifact,
  type SignResult,
  type SignatureForm,
  type Verifier,
  type VerifyResult,
} from './ops/signatures.js';
export { loadPrivateKey, loadPublicKey, publicKeyOf, keyFingerprint, encryptPrivateKey } from './signing/cosign-keys.js';
export { verifyCosignManifest, classicSignatureManifest, referrerSignatureManifest, signPayload, cosignTag, COSIGN_SUFFIXES, CosignMediaType, type CosignExpectation } from './signing/cosign.js';
export { verifyNotationManifest, loadCertificate, isNotationSignature, NOTATION_SIGNATURE_TYPE, type NotationExpectation } from './signing/notation.js';
export { simpleSigningPayload, parseSimpleSigningPayload } from './signing/simple-signing.js';
export { SigningInputError, type SignatureCheck, type SignatureFormat, type BlobReader } from './signing/result.js';

// Container Native Registry: model, store over OCI repositories, server
export * from './cnr/index.js';
