import { describe, expect, it } from 'vitest';
import { LruCache } from '../../../src/cnr/store/cache.js';

describe('LruCache', () => {
  it('stays within its budget and keeps what is used', () => {
    const cache = new LruCache<number>(100);
    for (let i = 0; i < 1000; i++) {
      cache.set(`k${i}`, i, 10);
      expect(cache.get('k0'), `k0 is used all along (i=${i})`).toBe(0);
      expect(cache.bytes).toBeLessThanOrEqual(100);
    }
    expect(cache.get('k999')).toBe(999);
    expect(cache.get('k500')).toBeUndefined();
  });

  it('refuses an entry larger than half the budget, and replaces a key in place', () => {
    const cache = new LruCache<string>(100);
    cache.set('big', 'x', 51);
    expect(cache.get('big')).toBeUndefined();
    cache.set('a', 'one', 10);
    cache.set('a', 'two', 20);
    expect(cache.get('a')).toBe('two');
    expect(cache.bytes).toBe(20);
    expect(cache.size).toBe(1);
  });
});
