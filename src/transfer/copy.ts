import { setTimeout as sleep } from 'node:timers/promises';
import type { ReadOnlyTarget, Target } from '../content/target.js';
import { isMountable, retryBudgetOf, withRetryBudget } from '../content/target.js';
import { RetryBudget } from '../util/retry-budget.js';
import { fetchBytes } from '../content/read.js';
import type { Descriptor } from '../oci/schemas.js';
import { isManifestLike } from '../oci/mediatypes.js';
import { DigestMismatchError, isTransientError, throwIfAborted } from '../oci/errors.js';
import { Limiter } from './limiter.js';
import { successors } from './graph.js';
import { streamBlob } from './stream-blob.js';
import { discoverAttached, recordAttached, TagIndex } from './referrers.js';

/** What happened to one object during a copy. */
export type CopyEvent =
  | { type: 'found'; descriptor: Descriptor } // the copy will visit it: reported as soon as the manifest naming it is read
  | { type: 'skip'; descriptor: Descriptor } // destination already had it
  | { type: 'mount'; descriptor: Descriptor } // cross-repository mount: no bytes travelled
  | { type: 'start'; descriptor: Descriptor }
  | { type: 'progress'; descriptor: Descriptor; bytes: number } // bytes so far for this object
  | { type: 'done'; descriptor: Descriptor };

export interface CopyOptions {
  /** Blob transfers running at once. */
  concurrency?: number;
  onEvent?: (event: CopyEvent) => void;
  /**
   * Shared between several copies into the same destination so that a blob shared by
   * several images moves once, and the pool bounds all of them together.
   */
  session?: CopySession;
  /**
   * Also copy what is attached to every manifest and index of the graph, recursively: OCI 1.1
   * referrers (signatures, SBOMs, attestations) and cosign's `.sig`/`.att`/`.sbom` tags, each
   * after its subject and recorded at the destination (see transfer/referrers.ts).
   */
  referrers?: boolean;
  /** Copy only what is attached to `root` (with `referrers`), not `root` itself: it is elsewhere. */
  attachedOnly?: boolean;
  /**
   * The children of a manifest or index to copy with it (default: all it names). A bundle's own
   * index, copied after its images, names only what is left: its config manifest.
   */
  successors?: (desc: Descriptor, children: Descriptor[]) => Descriptor[];
  /**
   * Cancels the copy: no object is begun after it fires, and a blob's requests in flight (on a
   * registry) are aborted; the copy rejects with an AbortedError. Objects already written stay:
   * nothing is tagged here, so nothing half-copied is named.
   */
  signal?: AbortSignal;
}

export interface CopyStats {
  /** Bytes sent to the destination. */
  bytesCopied: number;
  /** Bytes the destination already had or received by mount. */
  bytesSkipped: number;
  objectsCopied: number;
  objectsSkipped: number;
  mounts: number;
  /** Referrers and cosign tags recorded at the destination (copied or already there). */
  attached: number;
}

export const DEFAULT_CONCURRENCY = 8;

/**
 * Small requests (existence checks, manifests, mounts) allowed at once, per blob transfer
 * allowed at once. They carry no bulk data and wait on round trips, so they get their own
 * wider pool and never queue behind a long upload. Nothing that holds a slot of either pool
 * waits for another slot, so neither can deadlock.
 */
export const REQUESTS_PER_TRANSFER = 4;

/**
 * Tries of one blob copy: `attempts - 1` retries in all, whichever request of either side needs
 * them (see copyBlob). A destination cannot replay a stream it was given, so a transfer that
 * failed for a reason that may pass (connection, 5xx) starts again from a fresh read of the
 * source, and that new start is one of them.
 */
export const DEFAULT_TRANSFER_ATTEMPTS = 3;

/**
 * Blobs up to this size are latency-bound like the small requests and share their pool rather
 * than the transfer pool (bench/, 20 small images: 3.4 s against 3.9 s on a loaded machine).
 */
const SMALL_BLOB = 1024 * 1024;

/**
 * Blob copies (check, mount or upload) under way in this process, by destination repository
 * and digest, whichever copy started them: a second copy of the same blob to the same
 * repository waits for the first and then skips it. Besides the bytes, that spares distribution
 * rewriting the blob's link file while a manifest PUT of ours reads it: a torn read fails the
 * PUT with DIGEST_INVALID (seen with 16 bundles sharing a layer pushed at once).
 */
const blobsInFlight = new Map<string, Promise<void>>();

/** State shared by the copies of one operation into one destination. */
export class CopySession {
  readonly stats: CopyStats = emptyStats();
  /** Transfers of blobs over 1 MiB (bytes travelling) at once: the commands' --concurrency. */
  readonly limiter: Limiter;
  /** Small requests at once: HEAD, manifest GET/PUT, mount, blobs up to 1 MiB. */
  readonly requests: Limiter;
  /** The sources' tag lists, read once, for finding what is attached to each manifest. */
  readonly tags = new TagIndex();
  /** One promise per digest: each object is copied once, whoever asks first. */
  readonly inflight = new Map<string, Promise<void>>();
  constructor(
    concurrency = DEFAULT_CONCURRENCY,
    /**
     * Tries of one blob copy, everything it sends included (1: no retry at all); undefined: the
     * registry client's own `attempts` (of the destination, else the source), else
     * DEFAULT_TRANSFER_ATTEMPTS.
     */
    readonly attempts?: number,
  ) {
    this.limiter = new Limiter(concurrency);
    this.requests = new Limiter(concurrency * REQUESTS_PER_TRANSFER);
  }
}

/**
 * Copy the graph rooted at `root` from `src` to `dst`: children before parents, so a manifest
 * never lands before what it references; objects the destination has are skipped (HEAD first);
 * blobs are mounted when the destination can take them from the source's repository, else
 * streamed. Nothing is tagged here: tagging is the caller's last step.
 */
export async function copyGraph(src: ReadOnlyTarget, dst: Target, root: Descriptor, options: CopyOptions = {}): Promise<CopyStats> {
  const session = options.session ?? new CopySession(options.concurrency);
  const emit = options.onEvent ?? (() => {});
  const select = options.successors ?? ((_desc: Descriptor, children: Descriptor[]) => children);
  // This call's own figures, besides the session's totals: copies sharing a session each report
  // what they did (an object another copy moved counts for that one).
  const own = emptyStats();
  const tally = (change: (stats: CopyStats) => void) => {
    change(session.stats);
    change(own);
  };
  const found = (desc: Descriptor) => emit({ type: 'found', descriptor: desc });

  const mine = new Set<string>();
  const copyNode = (desc: Descriptor): Promise<void> => {
    const other = session.inflight.get(desc.digest);
    if (other) {
      if (mine.has(desc.digest)) return other;
      // Another copy of the session moved it: here it counts as already there.
      mine.add(desc.digest);
      return other.then(() => {
        own.objectsSkipped++;
        own.bytesSkipped += desc.size;
      });
    }
    mine.add(desc.digest);
    const p = copyOne(desc);
    session.inflight.set(desc.digest, p);
    // A failed object may be retried by a later copy in the same session.
    p.catch(() => session.inflight.delete(desc.digest));
    return p;
  };

  const skip = (desc: Descriptor) => {
    tally((t) => {
      t.objectsSkipped++;
      t.bytesSkipped += desc.size;
    });
    emit({ type: 'skip', descriptor: desc });
  };

  const copyOne = async (desc: Descriptor): Promise<void> => {
    throwIfAborted(options.signal, `copy of ${desc.digest} to ${dst.location}`);
    if (!isManifestLike(desc.mediaType)) return copyBlobOnce(desc);
    const present = await session.requests.run(() => dst.exists(desc));
    if (present) skip(desc);
    if (present && !options.referrers) return;
    // No slot is held while the children copy: a parent never waits on a slot its own
    // descendants need (no deadlock, whatever the depth and the pool size).
    const bytes = await session.requests.run(() => fetchBytes(src, desc));
    const children = select(desc, successors(desc, bytes, `${src.location}@${desc.digest}`));
    // Already there, only what is attached to its manifests may not be: blobs are not visited.
    const visited = present ? children.filter((c) => isManifestLike(c.mediaType)) : children;
    visited.forEach(found);
    await Promise.all(visited.map(copyNode));
    if (!present) {
      await session.requests.run(async () => {
        throwIfAborted(options.signal, `copy of ${desc.digest} to ${dst.location}`);
        emit({ type: 'start', descriptor: desc });
        await dst.push(desc, bytes);
      });
      copied(desc);
    }
    if (options.referrers) await copyAttached(desc);
  };

  /** What is attached to a manifest in the source, copied after it and recorded at the destination. */
  const copyAttached = async (subject: Descriptor): Promise<void> => {
    const attached = await session.requests.run(() => discoverAttached(src, subject, session.tags));
    if (attached.length === 0) return;
    attached.forEach((a) => found(a.descriptor));
    await Promise.all(attached.map((a) => copyNode(a.descriptor)));
    await session.requests.run(() => recordAttached(dst, subject, attached, src));
    tally((t) => {
      t.attached += attached.length;
    });
  };

  /** One blob, unless another copy in this process is storing it in the same repository. */
  const copyBlobOnce = async (desc: Descriptor): Promise<void> => {
    const key = isMountable(dst) ? `${dst.location}@${desc.digest}` : undefined;
    const elsewhere = key && blobsInFlight.get(key);
    if (elsewhere && (await elsewhere.then(() => true, () => false))) {
      skip(desc);
      return;
    }
    const stored = copyBlob(desc);
    if (!key) return stored;
    blobsInFlight.set(key, stored);
    try {
      await stored;
    } finally {
      if (blobsInFlight.get(key) === stored) blobsInFlight.delete(key);
    }
  };

  /**
   * One blob is one operation with one retry budget (`--retries`: see CopySession.attempts)
   * for all it sends to either side: the HEAD, the mount, the download with its resumes, the
   * upload with its chunk retries, and any new start of the whole transfer from a fresh read.
   */
  const copyBlob = async (desc: Descriptor): Promise<void> => {
    // The registry client's policy (its --retries and waits), unless the session sets the tries.
    const policy = retryBudgetOf(dst, src);
    const limit = session.attempts !== undefined ? session.attempts - 1 : (policy?.limit ?? DEFAULT_TRANSFER_ATTEMPTS - 1);
    const budget = new RetryBudget(limit, options.signal, policy?.backoff);
    const from = withRetryBudget(src, budget);
    const to = withRetryBudget(dst, budget);
    if (await session.requests.run(() => to.exists(desc))) {
      skip(desc);
      return;
    }
    if (isMountable(to) && (await session.requests.run(() => to.mountFrom(desc, from)))) {
      tally((t) => {
        t.mounts++;
        t.bytesSkipped += desc.size;
      });
      emit({ type: 'mount', descriptor: desc });
      return;
    }
    await (desc.size <= SMALL_BLOB ? session.requests : session.limiter).run(async () => {
      for (;;) {
        throwIfAborted(options.signal, `copy of ${desc.digest} to ${dst.location}`);
        try {
          await streamBlob(desc, from, to, emit);
          return;
        } catch (err) {
          // A stream given to the destination cannot be replayed: a new start reads the source again.
          const retry = err instanceof DigestMismatchError || !isTransientError(err) || options.signal?.aborted ? undefined : budget.take();
          if (retry === undefined) throw err;
          await sleep(budget.backoff(retry));
        }
      }
    });
    copied(desc);
  };

  const copied = (desc: Descriptor) => {
    tally((t) => {
      t.objectsCopied++;
      t.bytesCopied += desc.size;
    });
    emit({ type: 'done', descriptor: desc });
  };

  if (!options.attachedOnly) found(root);
  await (options.attachedOnly ? copyAttached(root) : copyNode(root));
  return own;
}

function emptyStats(): CopyStats {
  return { bytesCopied: 0, bytesSkipped: 0, objectsCopied: 0, objectsSkipped: 0, mounts: 0, attached: 0 };
}
