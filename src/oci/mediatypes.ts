/** Media types cnab-oci reads and writes. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  CnabConfig: 'application/vnd.cnab.config.v1+json',
} as const;

const MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaType.OciManifest, MediaType.DockerManifest]);
const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.OciIndex, MediaType.DockerManifestList]);

/** An image manifest (OCI or Docker schema 2). */
export function isImageManifest(mediaType: string | undefined): boolean {
  return mediaType !== undefined && MANIFEST_TYPES.has(mediaType);
}

/** An image index (OCI index or Docker manifest list). */
export function isIndex(mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEX_TYPES.has(mediaType);
}

/** Anything stored under /manifests/ rather than /blobs/. */
export function isManifestLike(mediaType: string | undefined): boolean {
  return isImageManifest(mediaType) || isIndex(mediaType);
}

/** The Accept header for manifest requests: every manifest and index type we understand. */
export const MANIFEST_ACCEPT = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
].join(', ');
