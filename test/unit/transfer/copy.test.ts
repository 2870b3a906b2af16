import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MemoryTarget } from '../../../src/content/memory.js';
import { digestOf } from '../../../src/oci/digest.js';
import { MediaType } from '../../../src/oci/mediatypes.js';
import type { Descriptor } from '../../../src/oci/schemas.js';
import type { ReadOnlyTarget } from '../../../src/content/target.js';
import { copyGraph, CopySession } from '../../../src/transfer/copy.js';
import { AbortedError } from '../../../src/oci/errors.js';
import { Limiter } from '../../../src/transfer/limiter.js';

const blob = (data: Uint8Array, mediaType: string) => ({ desc: { mediaType, digest: digestOf(data), size: data.length } as Descriptor, data });

async function image(target: MemoryTarget, layers: number[]): Promise<Descriptor> {
  const parts = layers.map((n) => blob(randomBytes(n), MediaType.OciLayerGzip));
  const config = blob(Buffer.from('{"architecture":"amd64","os":"linux"}'), MediaType.OciConfig);
  for (const b of [config, ...parts]) await target.push(b.desc, b.data);
  const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: config.desc, layers: parts.map((p) => p.desc) })), MediaType.OciManifest);
  await target.push(manifest.desc, manifest.data);
  return manifest.desc;
}

describe('Limiter', () => {
  it('never runs more than its limit, even when callers arrive as slots are released', async () => {
    const limiter = new Limiter(2);
    let running = 0;
    let peak = 0;
    const task = async () => {
      running++;
      peak = Math.max(peak, running);
      await null;
      running--;
    };
    const all: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      all.push(limiter.run(task));
      let p = Promise.resolve();
      for (let k = 0; k < i % 4; k++) p = p.then(() => {});
      await p;
    }
    // Callers that start a task the moment one of theirs finishes (the old limiter reached 3 here).
    const chain = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await limiter.run(task);
        all.push(limiter.run(task));
      }
    };
    await Promise.all([chain(50), chain(50), chain(50)]);
    await Promise.all(all);
    expect(peak).toBe(2);
  });
});

describe('copyGraph', () => {
  it('copies children before parents, each object once', async () => {
    const src = new MemoryTarget('src');
    const root = await image(src, [100, 200]);
    const dst = new MemoryTarget('dst');
    const order: string[] = [];
    const push = dst.push.bind(dst);
    dst.push = async (desc, content) => {
      order.push(desc.mediaType);
      return push(desc, content);
    };
    const session = new CopySession(1);
    const [a, b] = await Promise.all([copyGraph(src, dst, root, { session }), copyGraph(src, dst, root, { session })]);
    expect(order.at(-1)).toBe(MediaType.OciManifest);
    expect(order).toHaveLength(4);
    expect(session.stats.objectsCopied).toBe(4);
    // Each call reports what it did itself: together, each object once; the other found the root being copied.
    expect(a.objectsCopied + b.objectsCopied).toBe(4);
    expect(a.objectsSkipped + b.objectsSkipped).toBe(1); // the root, whole
    expect(a.bytesCopied + b.bytesCopied).toBe(session.stats.bytesCopied);
  });

  it('reports per call what that call did, while a shared session totals them', async () => {
    const src = new MemoryTarget('src');
    const first = await image(src, [100]);
    const second = await image(src, [300, 400]);
    const dst = new MemoryTarget('dst');
    const session = new CopySession(2);
    const one = await copyGraph(src, dst, first, { session });
    const two = await copyGraph(src, dst, second, { session });
    expect(one.objectsCopied).toBe(3);
    expect(two.objectsCopied).toBe(3); // the config blob is the same bytes in both: already there
    expect(two.objectsSkipped).toBe(1);
    expect(session.stats.objectsCopied).toBe(6);
  });

  it('reports every object it will visit as found, before it is done', async () => {
    const src = new MemoryTarget('src');
    const root = await image(src, [100, 200]);
    const events: string[] = [];
    await copyGraph(src, new MemoryTarget('dst'), root, { onEvent: (e) => events.push(`${e.type} ${e.descriptor.digest}`) });
    const found = events.filter((e) => e.startsWith('found ')).map((e) => e.slice(6));
    const done = events.filter((e) => e.startsWith('done ')).map((e) => e.slice(5));
    expect(new Set(found)).toEqual(new Set(done));
    for (const digest of done) expect(events.indexOf(`found ${digest}`)).toBeLessThan(events.indexOf(`done ${digest}`));
  });

  it('starts a blob transfer again from a fresh source read after a transient failure, not after others', async () => {
    const src = new MemoryTarget('src');
    const root = await image(src, [5000]);
    const dst = new MemoryTarget('dst');
    let failures = 1;
    const push = dst.push.bind(dst);
    const pushes = new Map<string, number>();
    let layerDigest = '';
    dst.push = async (desc, content) => {
      pushes.set(desc.digest, (pushes.get(desc.digest) ?? 0) + 1);
      if (desc.mediaType === MediaType.OciLayerGzip) layerDigest = desc.digest;
      if (desc.mediaType === MediaType.OciLayerGzip && failures-- > 0) {
        (content as Readable).resume();
        throw Object.assign(new Error('connection reset'), { name: 'ConnectionError' });
      }
      return push(desc, content);
    };
    const stats = await copyGraph(src, dst, root);
    expect(stats.objectsCopied).toBe(3);
    expect(await dst.exists(root)).toBe(true);

    // The layer was sent twice (once failed), everything else once.
    expect(pushes.get(layerDigest)).toBe(2);
    expect([...pushes.values()].filter((n) => n === 1)).toHaveLength(2);

    // A failure that cannot pass is not tried again: one attempt per object, then the error.
    const other = new MemoryTarget('other');
    const tries: string[] = [];
    other.push = async (desc) => {
      tries.push(desc.digest);
      throw new Error('disk full');
    };
    await expect(copyGraph(src, other, root, { session: new CopySession(2, 3) })).rejects.toThrow(/disk full/);
    expect(new Set(tries).size).toBe(tries.length);
  });

  it('stops at its signal: nothing begun after it fires, an AbortedError, the parent never written', async () => {
    const src = new MemoryTarget('src');
    const root = await image(src, [100, 200, 300]);
    const controller = new AbortController();
    const dst = new MemoryTarget('dst');
    const pushed: string[] = [];
    const push = dst.push.bind(dst);
    dst.push = async (desc, content) => {
      pushed.push(desc.digest);
      controller.abort(); // cancelled as the first object lands
      return push(desc, content);
    };
    const err = await copyGraph(src, dst, root, { session: new CopySession(1), signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as AbortedError).exitCode).toBe(130);
    expect(pushed).toHaveLength(1);
    expect(await dst.exists(root)).toBe(false);
    await expect(copyGraph(src, new MemoryTarget('x'), root, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
  });

  it('finds nothing attached without asking for a tag its source does not list', async () => {
    const src = new MemoryTarget('src');
    const root = await image(src, [100]);
    const asked: string[] = [];
    let listed = 0;
    // A source that lists its tags, as a registry repository does.
    const resolve = (reference: string) => {
      asked.push(reference);
      return src.resolve(reference);
    };
    const source: ReadOnlyTarget & { tags(): Promise<string[]> } = {
      location: 'src',
      resolve,
      fetch: (d) => src.fetch(d),
      exists: (d) => src.exists(d),
      tags: async () => {
        listed++;
        return ['v1'];
      },
    };
    const stats = await copyGraph(source, new MemoryTarget('dst'), root, { referrers: true });
    expect(stats.objectsCopied).toBe(3);
    expect(listed).toBe(1);
    expect(asked).toEqual([]);
    // Without a tag list, each of the four attached tags is asked for.
    const plain: ReadOnlyTarget = { location: 'src', resolve, fetch: (d) => src.fetch(d), exists: (d) => src.exists(d) };
    await copyGraph(plain, new MemoryTarget('dst2'), root, { referrers: true });
    expect(asked).toHaveLength(4);
  });
});
