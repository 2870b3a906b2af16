/**
 * Reads that are always fresh yet shared. `read(key)` answers from a read of `key` that started
 * after the call: a caller joins the next read when one is already in flight (it may have
 * started before the caller's write landed), never the one in flight. Under load every key has
 * at most one read in flight and one queued, so a server revalidates a tag once per round trip
 * however many requests ask for it, and a push is visible to every request that starts after it.
 */
export class FreshReads<V> {
  private readonly states = new Map<string, { running: Promise<V>; queued?: Promise<V> }>();

  constructor(private readonly load: (key: string) => Promise<V>) {}

  read(key: string): Promise<V> {
    const state = this.states.get(key);
    if (!state) return this.start(key);
    if (!state.queued) {
      const settled = state.running.then(() => undefined, () => undefined);
      state.queued = settled.then(() => this.start(key));
    }
    return state.queued;
  }

  private start(key: string): Promise<V> {
    const running = this.load(key);
    const state = { running };
    this.states.set(key, state);
    const done = () => {
      const current = this.states.get(key);
      if (current !== state) return;
      // A queued read becomes the running one; with none queued the key is forgotten.
      if (!current.queued) this.states.delete(key);
    };
    running.then(done, done);
    return running;
  }
}
