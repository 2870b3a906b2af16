import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/schemas.js';
import type { RetryBudget } from '../util/retry-budget.js';

/**
 * A content-addressed store: a registry repository, an OCI image layout, memory.
 * Everything cnab-oci does is a copy of a graph of descriptors from one Target to another.
 *
 * - `fetch` returns a stream that fails (errors) if the bytes do not match `desc.digest`/`desc.size`.
 * - `push` stores content under `desc`; implementations verify what they store.
 *   Manifests and indexes (by `desc.mediaType`) go where manifests go; everything else is a blob.
 * - `tag` points a name at a descriptor already pushed. Tagging is always the last step of a publish.
 */
export interface ReadOnlyTarget {
  /** Human-readable location for messages, e.g. `localhost:5000/acme/app` or `oci:./layout`. */
  readonly location: string;
  /** Resolve a tag or digest to the descriptor of the manifest or index it names. */
  resolve(reference: string): Promise<Descriptor>;
  fetch(desc: Descriptor): Promise<Readable>;
  /** Optional: a small object whole and verified, where the target can do it without a stream (see fetchBytes). */
  fetchSmall?(desc: Descriptor): Promise<Uint8Array>;
  exists(desc: Descriptor): Promise<boolean>;
}

export interface Target extends ReadOnlyTarget {
  push(desc: Descriptor, content: Readable | Uint8Array): Promise<void>;
  tag(desc: Descriptor, reference: string): Promise<void>;
}

/**
 * A target that can receive a blob from another repository of the same server without the
 * bytes travelling (registry cross-repository mount). Returns false when the server declined,
 * in which case the caller copies the blob normally.
 */
export interface Mountable {
  mountFrom(desc: Descriptor, source: ReadOnlyTarget): Promise<boolean>;
}

/**
 * A target whose requests can spend a retry budget the caller holds, rather than one of their own
 * per call: a blob copy (HEAD, mount or download and upload, and any new start) is one operation.
 */
export interface Budgeted<T> {
  withRetryBudget(budget: RetryBudget): T;
  /** A fresh budget of the target's own policy (a registry client's `--retries`). */
  retryBudget(): RetryBudget;
}

/** The retry budget of the first target that has a policy of its own, if any. */
export function retryBudgetOf(...targets: ReadOnlyTarget[]): RetryBudget | undefined {
  for (const t of targets) {
    const budgeted = t as ReadOnlyTarget & Partial<Budgeted<ReadOnlyTarget>>;
    if (typeof budgeted.retryBudget === 'function') return budgeted.retryBudget();
  }
  return undefined;
}

export function withRetryBudget<T extends ReadOnlyTarget>(target: T, budget: RetryBudget): T {
  const budgeted = target as T & Partial<Budgeted<T>>;
  return typeof budgeted.withRetryBudget === 'function' ? budgeted.withRetryBudget(budget) : target;
}

export function isMountable(t: unknown): t is Mountable {
  return typeof (t as Partial<Mountable>)?.mountFrom === 'function';
}
