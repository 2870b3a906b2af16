import type { ReadOnlyTarget } from '../content/target.js';
import { fetchBytes } from '../content/read.js';
import { isImageManifest } from '../oci/mediatypes.js';
import { ManifestSchema, type Descriptor } from '../oci/schemas.js';
import { claimedSigner, isNotationSignature } from '../signing/notation.js';
import { discoverAttached } from '../transfer/referrers.js';
import { parseJsonOrUndefined } from '../util/json.js';

/** One thing attached to a manifest, for listings (`inspect --referrers`). */
export interface AttachmentInfo {
  digest: string;
  mediaType: string;
  /** What it is: the artifactType, else its config's media type; `cosign signature` and the like for cosign tags. */
  type: string;
  /** The cosign tag it is under. */
  tag?: string;
  annotations?: Record<string, string>;
  /** Who it says signed it, unverified (Notation: the leaf certificate's subject). */
  signer?: string;
  /** What is attached to it in turn (a signature on an SBOM). */
  attached: AttachmentInfo[];
}

/** How deep attachments of attachments are followed: a signature on a signed SBOM is three. */
const MAX_DEPTH = 4;

const COSIGN_TAG_TYPES: Record<string, string> = { sig: 'cosign signature', att: 'cosign attestation', sbom: 'cosign SBOM' };

/** Everything attached to `subject`, recursively, described from the attached manifests. */
export async function listAttachments(target: ReadOnlyTarget, subject: Descriptor, depth = 0): Promise<AttachmentInfo[]> {
  if (depth >= MAX_DEPTH) return [];
  const found = await discoverAttached(target, subject);
  return Promise.all(found.map(async ({ descriptor, tag }) => {
    const info: AttachmentInfo = { digest: descriptor.digest, mediaType: descriptor.mediaType, type: descriptor.artifactType ?? descriptor.mediaType, attached: [] };
    if (tag) info.tag = tag;
    if (isImageManifest(descriptor.mediaType)) {
      const manifest = ManifestSchema.safeParse(parseJsonOrUndefined(await fetchBytes(target, descriptor))).data;
      if (manifest) {
        info.type = manifest.artifactType ?? manifest.config.mediaType;
        if (manifest.annotations) info.annotations = manifest.annotations;
        const envelope = manifest.layers?.[0];
        if (isNotationSignature(manifest) && envelope) info.signer = claimedSigner(envelope.mediaType, await fetchBytes(target, envelope).catch(() => new Uint8Array()));
      }
    }
    const suffix = tag?.split('.').at(-1);
    if (suffix && COSIGN_TAG_TYPES[suffix]) info.type = COSIGN_TAG_TYPES[suffix]!;
    info.attached = await listAttachments(target, descriptor, depth + 1);
    return info;
  }));
}
