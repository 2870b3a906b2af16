/**
 * The Container Native Registry, the library: the pure model, the store over OCI repositories
 * (an OCI layout directory or a registry), the HTTP server, the client of any CNR server, and
 * the migration of a whole CNR registry into OCI.
 *
 *   const repositories = await openStorage(parseStorage('oci:./cnr-data'), () => new RegistryClient());
 *   const app = createCnrServer({ store: new CnrStore(repositories) });
 *   await app.listen({ host: '127.0.0.1', port: 5000 });
 */

// Model (no I/O)
export { CnrError } from './model/errors.js';
export { parsePackageName, parseFullName, parseMediaType, parseChannelName, manifestMediaType, contentMediaType, blobFilename, type PackageName } from './model/names.js';
export { parseRelease, isRelease, selectRelease, sortDescending } from './model/releases.js';
export { manifestView, releaseView, channelView, listEntry, pushOrder, formatTimestamp, type ReleaseRecord, type ChannelRecord, type PackageRecord, type ManifestView, type ListEntry, type ChannelView } from './model/views.js';
export { inspectPackage, chartMetadata, type PackageContent, type ChartMetadata } from './model/package.js';

// Store
export { CnrStore, type CnrStoreOptions, type PushRequest, type BlobContent } from './store/store.js';
export type { RepositorySet, PackageRepository } from './store/repositories.js';
export { LayoutRepositories } from './store/layout-repositories.js';
export { RegistryRepositories } from './store/registry-repositories.js';
export { parseStorage, openStorage, type StorageSpec } from './store/open.js';
export { Annotation as CnrAnnotation, HelmMediaType } from './store/oci-mapping.js';

// Server
export { createCnrServer, checkExposure, DEFAULT_MAX_BODY, type CnrServerOptions } from './server/app.js';
export { Htpasswd, loginToken } from './server/auth.js';

// Client
export { CnrClient, type CnrClientOptions, type RemoteView } from './client/client.js';
export { parseCnrReference, parseServer, DEFAULT_SERVER, type CnrReference, type CnrServerAddress } from './model/reference.js';
export { packPackage, releaseFromChart, type PackOptions } from './client/pack.js';
export { verifyPackage, unpackPackage, PackageMismatchError, type ExpectedPackage, type UnpackResult } from './client/unpack.js';
export { readLocalPackage, fetchVerified } from './client/local-package.js';

// Migration
export { migrateCnr, type MigrateOptions, type MigrateEvent, type MigrateSummary } from './migrate/migrate.js';
export { apprStoreSource, serverSource, type CnrSource } from './migrate/sources.js';
export { openApprStore, ApprStoreError, ApprBlobError, type ApprStore, type ReleaseSource } from './migrate/appr-store.js';
