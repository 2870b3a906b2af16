import { setTimeout as sleep } from 'node:timers/promises';
import { isTransientError } from '../oci/errors.js';

/**
 * The retry policy of the registry client, one for every request a Repository sends.
 *
 * `--retries N` (the transport's `attempts` = N + 1) bounds the re-sends of ONE operation: at most
 * N retries in all, whatever mix of causes (408/429/5xx answers, connection failures, bodies cut
 * short or damaged, manifest PUT races, upload restarts) and whichever loop takes them.
 *
 * - An operation is one call of a Repository method: resolve, fetch (the stream it returns, its
 *   resumes included), exists, push (an upload with its restarts, chunk retries and status
 *   queries; a manifest PUT with its race retries), mountFrom, probe, referrers, deleteManifest,
 *   ping; tag is a fetch of the manifest (when its bytes are not held) and a PUT, one operation
 *   each; tags() and catalog() are one operation per page.
 * - A retry is a request sent again, or sent to carry on (a Range resume, an upload started again
 *   from POST, a chunk sent again), because a request of the operation failed in a way a new try
 *   may cure. Each takes one from the operation's RetryBudget, which every loop shares: the
 *   transport's (send), re-reads (rereading), resumes, upload restarts and chunk retries, the
 *   manifest race. When none is left, the last failure is the operation's result.
 * - Not retries: the one re-send answering a 401 challenge, redirect hops, and the queries that
 *   decide how to carry on (an upload's status, whether a failed upload was committed after all,
 *   a manifest by the digest the registry named); their own re-sends do take from the budget.
 *   Token requests and the first-contact probe of a registry are shared by operations: each
 *   gets a budget of its own.
 *
 * Waits: retry k of an operation waits backoff(k) (retryDelay x 2^(k-1) plus up to 50% jitter,
 * at most 10 s) or what Retry-After asks (at most 60 s); a manifest race at least 250 ms x k (the
 * other writer's commit takes that long); a Range resume none. The transport begins no wait that
 * would end more than maxRetryTime after the first try of the request it retries.
 */
export { RetryBudget } from '../util/retry-budget.js';
import type { RetryBudget } from '../util/retry-budget.js';

/** What the retry loops need of the transport: the backoff and the debug log. */
export interface RetryPolicy {
  backoff(retry: number): number;
  log(line: string): void;
}

/**
 * Run a whole read again when it failed in a way a new try may cure, while the operation's budget
 * lasts: a read cut short or damaged on the way (a digest mismatch) is asked for again.
 */
export async function rereading<T>(policy: RetryPolicy, budget: RetryBudget, what: string, read: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await read();
    } catch (err) {
      const retry = isTransientError(err) && !budget.signal?.aborted ? budget.take() : undefined;
      if (retry === undefined) throw err;
      const wait = policy.backoff(retry);
      policy.log(`${what}: ${(err as Error).message}; reading it again (retry ${retry}/${budget.limit}) in ${wait} ms`);
      await sleep(wait);
    }
  }
}
