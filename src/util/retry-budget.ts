/**
 * The retries one operation may still take (`--retries N`: N in all), shared by every loop that
 * retries on its behalf. The rules of what counts as one operation and as one retry are in
 * registry/retry.ts; a blob copy (transfer/copy.ts) is one operation end to end.
 */
export const DEFAULT_RETRY_DELAY_MS = 200;
const MAX_BACKOFF_MS = 10_000;

/** Waits of `first` ms, doubling with each retry, plus up to 50% random jitter, at most 10 s. */
export function exponentialBackoff(first: number): (retry: number) => number {
  return (retry) => {
    const base = Math.min(first * 2 ** (retry - 1), MAX_BACKOFF_MS);
    return Math.round(base + Math.random() * base * 0.5);
  };
}

export class RetryBudget {
  private spent = 0;

  /**
   * `limit`: the retries the operation may take (`attempts - 1`). `signal`: cancels the
   * operation: its requests in flight are aborted and no retry is begun. `backoff`: the wait
   * before retry k, the policy of whoever made the budget (a registry client's `retryDelay`).
   */
  constructor(
    readonly limit: number,
    readonly signal?: AbortSignal,
    readonly backoff: (retry: number) => number = exponentialBackoff(DEFAULT_RETRY_DELAY_MS),
  ) {}

  /** Retries taken so far. */
  get used(): number {
    return this.spent;
  }

  /** The number (1-based) the next retry would have, or undefined when the budget is spent. */
  next(): number | undefined {
    return this.spent < this.limit ? this.spent + 1 : undefined;
  }

  /** Take one retry; its number (1-based), or undefined when none is left. */
  take(): number | undefined {
    if (this.spent >= this.limit) return undefined;
    return ++this.spent;
  }
}
