/**
 * A cache bounded by a byte budget, for content addressed by digest (which never changes, so an
 * entry is valid for as long as it stays). Two generations instead of a strict LRU: new and
 * recently used entries live in `young`; when it holds half the budget it becomes `old` and the
 * previous `old` is dropped; a hit in `old` moves the entry back to `young`. Every operation is
 * O(1) and a hit in `young` touches nothing (re-inserting into one big Map on every hit, as a
 * strict LRU does, costs tens of microseconds per lookup at 20,000 entries: bench/cnr.mjs).
 */
export class LruCache<V> {
  private young = new Map<string, { value: V; bytes: number }>();
  private old = new Map<string, { value: V; bytes: number }>();
  private youngBytes = 0;
  private oldBytes = 0;

  constructor(readonly budget: number) {}

  get(key: string): V | undefined {
    const hot = this.young.get(key);
    if (hot) return hot.value;
    const cold = this.old.get(key);
    if (!cold) return undefined;
    this.old.delete(key);
    this.oldBytes -= cold.bytes;
    this.insert(key, cold);
    return cold.value;
  }

  set(key: string, value: V, bytes: number): void {
    if (bytes > this.budget / 2) return;
    const old = this.old.get(key);
    if (old) {
      this.old.delete(key);
      this.oldBytes -= old.bytes;
    }
    const young = this.young.get(key);
    if (young) {
      this.young.delete(key);
      this.youngBytes -= young.bytes;
    }
    this.insert(key, { value, bytes });
  }

  private insert(key: string, entry: { value: V; bytes: number }): void {
    this.young.set(key, entry);
    this.youngBytes += entry.bytes;
    if (this.youngBytes > this.budget / 2) {
      this.old = this.young;
      this.oldBytes = this.youngBytes;
      this.young = new Map();
      this.youngBytes = 0;
    }
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  get bytes(): number {
    return this.youngBytes + this.oldBytes;
  }
}
