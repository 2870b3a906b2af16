import { describe, expect, it } from 'vitest';
import { FreshReads } from '../../../src/cnr/store/fresh.js';

describe('FreshReads', () => {
  it('answers every caller from a read that started after its call, with one read in flight and one queued', async () => {
    let value = 0;
    let started = 0;
    const gates: Array<() => void> = [];
    const reads = new FreshReads<number>(async () => {
      started++;
      const seen = value; // what the storage holds when the read starts
      await new Promise<void>((resolve) => gates.push(resolve));
      return seen;
    });
    const first = reads.read('k');
    value = 1; // a write lands while the first read is in flight
    const second = reads.read('k');
    const third = reads.read('k');
    expect(started).toBe(1);
    gates.shift()!();
    expect(await first).toBe(0);
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toBe(2);
    gates.shift()!();
    // Both later callers see the write: their read started after they asked.
    expect(await second).toBe(1);
    expect(await third).toBe(1);
    expect(started).toBe(2);
  });

  it('does not keep a failure: the next caller reads again', async () => {
    let fail = true;
    const reads = new FreshReads<string>(async () => {
      if (fail) throw new Error('down');
      return 'up';
    });
    await expect(reads.read('k')).rejects.toThrow('down');
    fail = false;
    expect(await reads.read('k')).toBe('up');
  });
});
