import { Transform } from 'node:stream';
import type { ReadOnlyTarget, Target } from '../content/target.js';
import { isMountable } from '../content/target.js';
import { fetchBytes } from '../content/read.js';
import type { Descriptor } from '../oci/schemas.js';
import { isManifestLike } from '../oci/mediatypes.js';
import { Limiter } from './limiter.js';
import { successors } from './graph.js';

/** What happened to one object during a copy. */
export type CopyEvent =
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
}

export interface CopyStats {
  /** Bytes sent to the destination. */
  bytesCopied: number;
  /** Bytes the destination already had or received by mount. */
  bytesSkipped: number;
  objectsCopied: number;
  objectsSkipped: number;
  mounts: number;
}

export const DEFAULT_CONCURRENCY = 8;

/** State shared by the copies of one operation into one destination. */
export class CopySession {
  readonly stats: CopyStats = { bytesCopied: 0, bytesSkipped: 0, objectsCopied: 0, objectsSkipped: 0, mounts: 0 };
  readonly limiter: Limiter;
  /** One promise per digest: each object is copied once, whoever asks first. */
  readonly inflight = new Map<string, Promise<void>>();
  constructor(concurrency = DEFAULT_CONCURRENCY) {
    this.limiter = new Limiter(concurrency);
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

  const copyNode = (desc: Descriptor): Promise<void> => {
    let p = session.inflight.get(desc.digest);
    if (!p) {
      p = copyOne(desc);
      session.inflight.set(desc.digest, p);
      // A failed object may be retried by a later copy in the same session.
      p.catch(() => session.inflight.delete(desc.digest));
    }
    return p;
  };

  const skip = (desc: Descriptor) => {
    session.stats.objectsSkipped++;
    session.stats.bytesSkipped += desc.size;
    emit({ type: 'skip', descriptor: desc });
  };

  const copyOne = async (desc: Descriptor): Promise<void> => {
    if (await session.limiter.run(() => dst.exists(desc))) {
      skip(desc);
      return;
    }
    if (isManifestLike(desc.mediaType)) {
      const bytes = await session.limiter.run(() => fetchBytes(src, desc));
      await Promise.all(successors(desc, bytes, `${src.location}@${desc.digest}`).map(copyNode));
      await session.limiter.run(async () => {
        emit({ type: 'start', descriptor: desc });
        await dst.push(desc, bytes);
      });
      session.stats.objectsCopied++;
      session.stats.bytesCopied += desc.size;
      emit({ type: 'done', descriptor: desc });
      return;
    }
    await session.limiter.run(async () => {
      if (isMountable(dst) && (await dst.mountFrom(desc, src))) {
        session.stats.mounts++;
        session.stats.bytesSkipped += desc.size;
        emit({ type: 'mount', descriptor: desc });
        return;
      }
      emit({ type: 'start', descriptor: desc });
      const stream = await src.fetch(desc);
      let done = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          done += chunk.length;
          emit({ type: 'progress', descriptor: desc, bytes: done });
          cb(null, chunk);
        },
      });
      stream.on('error', (err) => counter.destroy(err));
      await dst.push(desc, stream.pipe(counter));
      session.stats.objectsCopied++;
      session.stats.bytesCopied += desc.size;
      emit({ type: 'done', descriptor: desc });
    });
  };

  const before = { ...session.stats };
  await copyNode(root);
  return {
    bytesCopied: session.stats.bytesCopied - before.bytesCopied,
    bytesSkipped: session.stats.bytesSkipped - before.bytesSkipped,
    objectsCopied: session.stats.objectsCopied - before.objectsCopied,
    objectsSkipped: session.stats.objectsSkipped - before.objectsSkipped,
    mounts: session.stats.mounts - before.mounts,
  };
}
