/**
 * The retries one operation may still take (`--retries N`: N in all), shared by every loop that
 * retries on its behalf. The rules of what counts as one operation and as one retry are in
 * registry/retry.ts; a blob copy (transfer/copy.ts) is one operation end to end.
 */
export class RetryBudget {
  private spent = 0;

  /**
   * `limit`: the retries the operation may take (`attempts - 1`). `signal`: cancels the
   * operation: its requests in flight are aborted and no retry is begun.
   */
  constructor(readonly limit: number, readonly signal?: AbortSignal) {}

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
