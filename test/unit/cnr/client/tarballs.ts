import { gunzipSync, gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

export interface TarEntry {
  name: string;
  type: tar.Header['type'];
  mode: number;
  mtime: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  linkname?: string;
  body: string;
}

/** The entries of a .tar.gz, in order, with their bodies as text. */
export async function readTarGz(bytes: Uint8Array): Promise<TarEntry[]> {
  const extract = tar.extract();
  const out: TarEntry[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      const h = entry.header;
      const e: TarEntry = { name: h.name, type: h.type, mode: h.mode, mtime: h.mtime.getTime(), uid: h.uid, gid: h.gid, uname: h.uname, gname: h.gname, body: Buffer.concat(parts).toString() };
      if (h.linkname) e.linkname = h.linkname;
      out.push(e);
    }
  })();
  extract.end(gunzipSync(bytes));
  await reading;
  return out;
}

export type RawEntry =
  | { name: string; body?: string; mode?: number }
  | { name: string; type: 'directory' }
  | { name: string; type: 'symlink' | 'link'; linkname: string }
  | { name: string; type: 'character-device' | 'block-device' | 'fifo' };

/** A hand-made .tar.gz, hostile ones included: tar-stream writes whatever names and types it is given. */
export async function rawTarGz(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (!('type' in e)) pack.entry({ name: e.name, mode: e.mode ?? 0o644 }, e.body ?? '');
    else if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory' });
    else if (e.type === 'symlink' || e.type === 'link') pack.entry({ name: e.name, type: e.type, linkname: e.linkname });
    else pack.entry({ name: e.name, type: e.type, devmajor: 1, devminor: 3 });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}
