export const Annotation = {
  RuntimeVersion: 'io.cnab.runtime_version',
  Keywords: 'io.cnab.keywords',
  ArtifactType: 'org.opencontainers.artifactType',
  Title: 'org.opencontainers.image.title',
  Version: 'org.opencontainers.image.version',
  Description: 'org.opencontainers.image.description',
  Authors: 'org.opencontainers.image.authors',
  ManifestType: 'io.cnab.manifest.type',
  ComponentName: 'io.cnab.component.name',
} as const;

export type CnabManifestType = 'config' | 'invocation' | 'component';
