import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { createProgress } from '../../../src/cli/progress.js';
import type { Descriptor } from '../../../src/oci/schemas.js';

function stream(isTTY: boolean): Writable & { isTTY: boolean; columns: number; text: () => string } {
  let text = '';
  const s = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number; text: () => string };
  s.isTTY = isTTY;
  s.columns = 80;
  s.text = () => text;
  return s;
}

const d = (n: number, size: number, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip'): Descriptor => ({ mediaType, digest: `sha256:${String(n).repeat(64).slice(0, 64)}` as Descriptor['digest'], size });

describe('progress', () => {
  it('without a TTY writes one line per object, never per chunk', () => {
    const out = stream(false);
    const p = createProgress(out);
    p.onEvent({ type: 'found', descriptor: d(1, 1000) }, 'web:1');
    p.onEvent({ type: 'start', descriptor: d(1, 1000) }, 'web:1');
    p.onEvent({ type: 'progress', descriptor: d(1, 1000), bytes: 500 }, 'web:1');
    p.onEvent({ type: 'done', descriptor: d(1, 1000) }, 'web:1');
    p.onEvent({ type: 'skip', descriptor: d(2, 10) }, 'db:1');
    p.onEvent({ type: 'mount', descriptor: d(3, 10) }, undefined);
    p.finish();
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/copied .*1000 B\s+web:1$/);
    expect(lines[1]).toMatch(/exists .*db:1$/);
    expect(lines[2]).toMatch(/mounted .*bundle$/);
  });

  it('on a TTY redraws one line per image and a total bar in place, counting shared objects once', () => {
    vi.useFakeTimers();
    try {
      const out = stream(true);
      const p = createProgress(out);
      p.onEvent({ type: 'found', descriptor: d(1, 1000) }, 'web:1');
      p.onEvent({ type: 'found', descriptor: d(2, 3000) }, 'web:1');
      p.onEvent({ type: 'found', descriptor: d(2, 3000) }, 'db:1'); // shared: counts for web only
      p.onEvent({ type: 'found', descriptor: d(4, 1000) }, 'db:1');
      p.onEvent({ type: 'progress', descriptor: d(2, 3000), bytes: 1500 }, 'db:1');
      vi.advanceTimersByTime(150);
      const first = out.text();
      expect(first).toContain('web:1');
      expect(first).toMatch(/web:1\s+1.5 KiB \/ 3.9 KiB/);
      expect(first).toMatch(/db:1\s+0 B \/ 1000 B/);
      expect(first).toMatch(/total \[#+\.+\] 1.5 KiB \/ 4.9 KiB/);
      p.onEvent({ type: 'done', descriptor: d(2, 3000) }, 'db:1');
      p.onEvent({ type: 'skip', descriptor: d(1, 1000) }, 'web:1');
      p.onEvent({ type: 'mount', descriptor: d(4, 1000) }, 'db:1');
      p.finish();
      const second = out.text().slice(first.length);
      expect(second.startsWith('\x1b[3A')).toBe(true); // back over the three lines drawn
      expect(second).toMatch(/total \[#+\] 4.9 KiB \/ 4.9 KiB/);
      expect(second).not.toMatch(/\.\]/);
    } finally {
      vi.useRealTimers();
    }
  });
});
