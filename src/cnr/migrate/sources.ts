import { InputError } from '../../oci/errors.js';
import type { CnrClient } from '../client/client.js';
import { parseFullName, parseMediaType } from '../model/names.js';
import type { ChannelRecord } from '../model/views.js';
import { openApprStore, type ReleaseSource } from './appr-store.js';

/** Where a migration reads: a live CNR server or the reference server's filesystem store. */
export interface CnrSource {
  readonly location: string;
  /** Packages with their creation time, oldest first where the source says so. */
  packages(filter: { namespace?: string }): Promise<Array<{ package: string; createdAt: string }>>;
  /** Every (release, media type) of a package, in the order the source lists them. */
  releases(pkg: string): Promise<ReleaseSource[]>;
  channels(pkg: string): Promise<ChannelRecord[]>;
  /** The gzip bytes of a release, as the source has them (the migration verifies them). */
  blob(release: ReleaseSource): Promise<Buffer>;
}

export async function apprStoreSource(dir: string): Promise<CnrSource> {
  const store = await openApprStore(dir);
  return {
    location: `appr-store:${dir}`,
    async packages(filter) {
      const all = await store.packages();
      return all.filter((p) => !filter.namespace || p.package.startsWith(`${filter.namespace}/`));
    },
    releases: (pkg) => store.releases(pkg),
    channels: (pkg) => store.channels(pkg),
    blob: (release) => store.blob(release.package, release.digest),
  };
}

/** A live server, through its API: the list, each package's views and channels, and pulls. */
export function serverSource(client: CnrClient, location: string): CnrSource {
  return {
    location,
    async packages(filter) {
      const entries = await client.list(filter.namespace ? { namespace: filter.namespace } : {});
      return entries.map((e) => ({ package: e.name, createdAt: e.created_at }));
    },
    async releases(pkg) {
      const views = await client.releases(parseFullName(pkg));
      return views.map((v) => {
        if (v.package !== pkg) throw new InputError(`${location}: the views of ${pkg} name another package (${v.package})`);
        return { package: pkg, release: v.release, mediaType: parseMediaType(v.mediaType), createdAt: v.created_at, metadata: v.metadata, digest: v.content.digest, size: v.content.size };
      });
    },
    async channels(pkg) {
      return (await client.channels(parseFullName(pkg))).map((c) => ({ name: c.name, current: c.current, releases: c.releases }));
    },
    blob: (r) => client.pull(parseFullName(r.package), r.release, r.mediaType),
  };
}
