import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ReplayWindow } from '../../../src/registry/replay-window.js';

async function collect(parts: AsyncIterable<Buffer>): Promise<string> {
  const out: Buffer[] = [];
  for await (const p of parts) out.push(p);
  return Buffer.concat(out).toString();
}

/** A source that gives its bytes in pieces of 4, and counts how often it is read. */
function source(text: string) {
  const pieces = text.match(/.{1,4}/gs)!.map((p) => Buffer.from(p));
  let reads = 0;
  const stream = Readable.from((function* () {
    for (const p of pieces) {
      reads++;
      yield p;
    }
  })(), { objectMode: false });
  return { stream, reads: () => reads };
}

describe('ReplayWindow', () => {
  it('gives a range again from what it holds, then goes on with the source, reading it once', async () => {
    const { stream, reads } = source('abcdefghijklmnopqrstuvwxyz');
    const w = new ReplayWindow(stream, 8);
    expect(await collect(w.range(0, 10))).toBe('abcdefghij');
    const readsAfterFirst = reads();
    // The registry says it holds 6 bytes: 6-9 come from the window, 10-25 from the source.
    expect(w.start).toBeLessThanOrEqual(6);
    expect(await collect(w.range(6, 26))).toBe('ghijklmnopqrstuvwxyz');
    expect(reads()).toBe(readsAfterFirst + 4);
    expect(await w.expectEnd()).toBe(true);
    expect(w.exhausted).toBe(false);
  });

  it('keeps only about `window` bytes and refuses an offset it no longer holds', async () => {
    const w = new ReplayWindow(source('abcdefghijklmnopqrstuvwxyz').stream, 8);
    await collect(w.range(0, 20));
    expect(w.end).toBe(20);
    expect(20 - w.start).toBeGreaterThanOrEqual(8);
    expect(20 - w.start).toBeLessThan(12);
    expect(() => w.range(4, 26)).toThrow(/outside the replay window/);
    expect(() => w.range(21, 26)).toThrow(/outside the replay window/);
  });

  it('splits a piece across ranges, and tells a source that ends early or goes on too long', async () => {
    const w = new ReplayWindow(source('abcdefghij').stream, 64);
    expect(await collect(w.range(0, 3))).toBe('abc');
    expect(await collect(w.range(3, 12))).toBe('defghij');
    expect(w.exhausted).toBe(true);
    const longer = new ReplayWindow(source('abcdefghij').stream, 64);
    await collect(longer.range(0, 9));
    expect(await longer.expectEnd()).toBe(false);
  });

  it('a range not yet read does not hold the next one back', async () => {
    const w = new ReplayWindow(source('abcdefgh').stream, 64);
    const unread = w.range(0, 8);
    await unread.return(undefined);
    await w.idle();
    expect(await collect(w.range(0, 8))).toBe('abcdefgh');
  });
});
