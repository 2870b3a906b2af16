import type { Readable } from 'node:stream';

/**
 * A blob's source read once, front to back, keeping the last `window` bytes it gave out so
 * that an upload cut off in the middle of a PATCH can go on from the offset the registry says
 * it holds, without holding whole chunks in memory or reading the source again. The registry
 * is at most a few socket buffers behind what was sent, so a window of some MiB covers it.
 *
 * One range is read at a time: a new one waits until the previous body has stopped (`idle`).
 * Nothing is hashed here: the source stream verifies itself, and the registry verifies the digest
 * it is given before it commits.
 */
export class ReplayWindow {
  private readonly source: AsyncIterator<Buffer>;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Read from the source but not given out yet (it belongs to the next range). */
  private leftover: Buffer | undefined;
  /** Bytes given out so far: the end of the window. */
  private position = 0;
  private reading: Promise<void> = Promise.resolve();
  /** The source's own failure (a digest mismatch, a broken download): never a reason to retry. */
  sourceError: unknown;
  /** The source ended before a range did. */
  exhausted = false;

  constructor(stream: Readable, private readonly window: number) {
    this.source = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** The first offset that can still be given out again. */
  get start(): number {
    return this.position - this.heldBytes;
  }

  /** Bytes read from the source and given out so far. */
  get end(): number {
    return this.position;
  }

  /** Resolves when the body of the last range has stopped reading. */
  idle(): Promise<void> {
    return this.reading;
  }

  /** Bytes [from, to): the held ones first, then fresh from the source. `from` must be >= start. */
  range(from: number, to: number): AsyncGenerator<Buffer> {
    if (from < this.start || from > this.position) throw new RangeError(`offset ${from} is outside the replay window ${this.start}-${this.position}`);
    return this.read(from, to);
  }

  /** After the last range: the source must have nothing more. */
  async expectEnd(): Promise<boolean> {
    if (this.leftover) return false;
    return (await this.next()) === undefined;
  }

  private async *read(from: number, to: number): AsyncGenerator<Buffer> {
    // Set when the body starts reading (a body never read never holds the source).
    let done!: () => void;
    this.reading = new Promise((resolve) => (done = resolve));
    try {
      let at = this.start;
      for (const piece of this.held.slice()) {
        const end = at + piece.length;
        if (end > from && at < to) yield piece.subarray(Math.max(0, from - at), Math.min(piece.length, to - at));
        at = end;
      }
      while (this.position < to) {
        const piece = this.leftover ?? (await this.next());
        this.leftover = undefined;
        if (!piece) {
          this.exhausted = true; // the request's Content-Length is not met; the caller says why
          return;
        }
        const part = piece.length > to - this.position ? piece.subarray(0, to - this.position) : piece;
        if (part.length < piece.length) this.leftover = piece.subarray(part.length);
        this.keep(part);
        yield part;
      }
    } finally {
      done();
    }
  }

  private async next(): Promise<Buffer | undefined> {
    try {
      const { value, done } = await this.source.next();
      return done ? undefined : value;
    } catch (err) {
      this.sourceError ??= err;
      throw err;
    }
  }

  private keep(part: Buffer): void {
    this.held.push(part);
    this.heldBytes += part.length;
    this.position += part.length;
    while (this.held.length > 1 && this.heldBytes - this.held[0]!.length >= this.window) this.heldBytes -= this.held.shift()!.length;
  }
}
