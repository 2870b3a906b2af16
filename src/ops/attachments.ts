import type { ReadOnlyTarget } from '../content/target.js';
import { fetchBytes } from '../content/read.js';
import { isImageManifest } from '../oci/mediatypes.js';
import { ManifestSchema, type Descriptor } from '../oci/schemas.js';
import { claimedSigner, isNotationSignature } from '../signing/notation.js';
import { discoverAttached, TagIndex } from '../transfer/referrers.js';
import { parseJsonOrUndefined } from '../util/json.js';
import { bundleSubjects, type PulledBundle } from './pull.js';

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

/** What is attached to one subject of a bundle. */
export interface SubjectAttachments {
  /** `bundle`, or the image's original reference. */
  what: string;
  digest: string;
  attached: AttachmentInfo[];
}

/** How deep attachments of attachments are followed: a signature on a signed SBOM is three. */
const MAX_DEPTH = 4;

const COSIGN_TAG_TYPES: Record<string, string> = { sig: 'cosign signature', att: 'cosign attestation', sbom: 'cosign SBOM' };

/** What is attached to the bundle's index and to each of its images (`inspect --referrers`). */
export async function bundleAttachments(target: ReadOnlyTarget, pulled: PulledBundle): Promise<SubjectAttachments[]> {
  // One tags list of the repository serves every subject and every level.
  const tags = new TagIndex();
  return Promise.all(bundleSubjects(pulled, true).map(async (s) => ({ what: s.what, digest: s.descriptor.digest, attached: await listAttachments(target, s.descriptor, tags) })));
}

/** Everything attached to `subject`, recursively, described from the attached manifests. */
export async function listAttachments(target: ReadOnlyTarget, subject: Descriptor, tags = new TagIndex(), depth = 0): Promise<AttachmentInfo[]> {
  if (depth >= MAX_DEPTH) return [];
  const found = await discoverAttached(target, subject, tags);
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
    info.attached = await listAttachments(target, descriptor, tags, depth + 1);
    return info;
  }));
}
