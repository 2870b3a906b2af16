import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { OciLayout, REF_NAME_ANNOTATION } from '../../content/layout.js';
import type { Descriptor } from '../../oci/schemas.js';
import { parsePackageName, type PackageName } from '../model/names.js';
import { FreshReads } from './fresh.js';
import type { PackageRepository, RepositorySet, TagView } from './repositories.js';

/**
 * Packages in a directory, one OCI image layout each: `DIR/namespace/name/{oci-layout,index.json,blobs/}`.
 * Package names are validated before they become paths (names.ts), so no request reaches
 * outside `DIR`.
 */
export class LayoutRepositories implements RepositorySet {
  readonly location: string;
  private readonly opened = new Map<string, LayoutPackage>();

  constructor(readonly root: string) {
    this.location = `oci:${root}`;
  }

  ociRepository(): undefined {
    return undefined;
  }

  async packages(): Promise<string[]> {
    const names: string[] = [];
    for (const ns of await directories(this.root)) {
      for (const name of await directories(join(this.root, ns))) names.push(`${ns}/${name}`);
    }
    return names;
  }

  async open(pkg: PackageName, create: boolean): Promise<PackageRepository | undefined> {
    const known = this.opened.get(pkg.full);
    if (known) return known;
    const dir = join(this.root, pkg.namespace, pkg.name);
    if (!create && !(await stat(join(dir, 'index.json')).catch(() => undefined))) return undefined;
    const repo = new LayoutPackage(await OciLayout.open(dir, { create }), join(dir, 'index.json'));
    this.opened.set(pkg.full, repo);
    return repo;
  }
}

/** Subdirectories whose names are package name components (anything else in DIR is not ours). */
async function directories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return entries.filter((e) => e.isDirectory() && isComponent(e.name)).map((e) => e.name);
}

function isComponent(name: string): boolean {
  try {
    parsePackageName(name, name);
    return true;
  } catch {
    return false;
  }
}

interface Snapshot {
  key: string;
  view: TagView;
}

class LayoutPackage implements PackageRepository {
  readonly location: string;
  private snapshot: Snapshot | undefined;
  // Every read of the tags stats index.json; it is parsed again only when the file changed
  // (writers rename a new file into place, so the inode changes with every write).
  private readonly reads = new FreshReads<TagView>(async () => {
    const st = await stat(this.indexFile, { bigint: true });
    const key = `${st.ino}:${st.mtimeNs}:${st.size}`;
    if (this.snapshot?.key === key) return this.snapshot.view;
    const byTag = new Map<string, Descriptor>();
    for (const m of await this.layout.list()) {
      const tag = m.annotations?.[REF_NAME_ANNOTATION];
      if (tag === undefined) continue;
      const { annotations: _name, ...desc } = m;
      byTag.set(tag, desc);
    }
    const view: TagView = { tags: [...byTag.keys()], probe: async (tag) => byTag.get(tag) };
    this.snapshot = { key, view };
    return view;
  });

  constructor(private readonly layout: OciLayout, private readonly indexFile: string) {
    this.location = layout.location;
  }

  /** One stat of index.json (and a read when it changed) answers both the tags and what they name. */
  tagView(): Promise<TagView> {
    return this.reads.read('');
  }

  async probe(tag: string): Promise<Descriptor | undefined> {
    return (await this.tagView()).probe(tag);
  }

  resolve(reference: string): Promise<Descriptor> {
    return this.layout.resolve(reference);
  }

  fetch(desc: Descriptor): Promise<Readable> {
    return this.layout.fetch(desc);
  }

  fetchSmall(desc: Descriptor): Promise<Uint8Array> {
    return this.layout.fetchSmall(desc);
  }

  exists(desc: Descriptor): Promise<boolean> {
    return this.layout.exists(desc);
  }

  push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    return this.layout.push(desc, content);
  }

  tag(desc: Descriptor, reference: string): Promise<void> {
    return this.layout.tag(desc, reference);
  }

  tagAll(tags: ReadonlyArray<{ desc: Descriptor; reference: string }>): Promise<void> {
    return this.layout.tagAll(tags);
  }

  untag(tag: string): Promise<void> {
    return this.layout.untag(tag);
  }
}
