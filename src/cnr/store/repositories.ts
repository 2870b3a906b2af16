import type { Target } from '../../content/target.js';
import type { Descriptor } from '../../oci/schemas.js';
import type { PackageName } from '../model/names.js';

/**
 * Where packages are kept: one OCI repository per package, in an OCI layout directory or a
 * registry. The CNR store is one implementation over this; the two storages differ only here.
 */
export interface RepositorySet {
  /** For messages: `oci:./cnr-data`, `registry.example.com/apps`. */
  readonly location: string;
  /** Where an OCI client finds a package (`registry.example.com/apps/ns/name`); undefined when no registry serves it. */
  ociRepository(pkg: PackageName): string | undefined;
  /** Every package that has a repository, as `namespace/name`, in no particular order. */
  packages(): Promise<string[]>;
  /** A package's repository; with `create` false, undefined when it has none. */
  open(pkg: PackageName, create: boolean): Promise<PackageRepository | undefined>;
}

/** One package's repository. Reads of tags are fresh: what the storage holds now. */
export interface PackageRepository extends Target {
  /**
   * The tags now, and a way to look up what they name (from the same read where the storage
   * gives both at once). `hints` are tags the caller will look up: a storage that reads each tag
   * separately may start reading them together with the list.
   */
  tagView(hints?: readonly string[]): Promise<TagView>;
  /** What a tag names now; undefined when there is no such tag. */
  probe(tag: string): Promise<Descriptor | undefined>;
  /** Tags in this order (a registry: one request each; a layout: one rewrite of index.json). */
  tagAll(tags: ReadonlyArray<{ desc: Descriptor; reference: string }>): Promise<void>;
  /**
   * Remove a tag that names `desc`. On a registry this deletes the manifest `desc` (how the
   * distribution API removes tags) with every tag on it: the store gives each manifest it
   * tags one tag of its own, or tags that are meant to go together.
   */
  untag(tag: string, desc: Descriptor): Promise<void>;
}

/** The tags of a repository as read once; `probe` answers from that read or reads the tag fresh. */
export interface TagView {
  readonly tags: readonly string[];
  probe(tag: string): Promise<Descriptor | undefined>;
}
