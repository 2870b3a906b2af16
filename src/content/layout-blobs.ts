import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pipeline as pipelineCb } from 'node:stream';
import type { Descriptor } from '../oci/schemas.js';
import { digestOf, parseDigest, verifyingStream } from '../oci/digest.js';
import { DigestMismatchError, NotFoundError } from '../oci/errors.js';

/**
 * A layout's `blobs/<alg>/<hex>` files: every read checked against its digest, every write to
 * a temporary file renamed into place, so a reader never sees a partial or wrong blob.
 */
export class LayoutBlobs {
  /** Blob directories known to exist: one mkdir per layout and algorithm, not one per blob. */
  private readonly blobDirs = new Set<string>();

  /** `location` names the layout in messages (`oci:DIR`). */
  constructor(private readonly dir: string, private readonly location: string) {}

  path(digest: string): string {
    // parseDigest validates: the hex cannot contain path separators.
    const { algorithm, hex } = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, hex);
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    const path = this.path(desc.digest);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${this.location}: blob ${desc.digest} not found`);
      throw err;
    }
    const verify = verifyingStream(desc, `${this.location}@${desc.digest}`);
    // pipeline destroys both ends on error, so a mismatch surfaces on the returned stream.
    return pipelineCb(fh.createReadStream(), verify, () => {});
  }

  /** A small blob read whole and checked against its digest (fetchBytes; manifests, configs). */
  async fetchSmall(desc: Descriptor): Promise<Uint8Array> {
    let data: Buffer;
    try {
      data = await readFile(this.path(desc.digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${this.location}: blob ${desc.digest} not found`);
      throw err;
    }
    const actual = digestOf(data, parseDigest(desc.digest).algorithm);
    if (actual !== desc.digest || data.length !== desc.size) throw new DigestMismatchError(`${this.location}@${desc.digest}`, desc.digest, actual);
    return data;
  }

  async exists(desc: Descriptor): Promise<boolean> {
    const st = await stat(this.path(desc.digest)).catch(() => undefined);
    // A blob of the wrong size is a leftover of some other writer: treat it as absent so push replaces it.
    return st !== undefined && st.isFile() && st.size === desc.size;
  }

  async push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    const final = this.path(desc.digest);
    if (await this.exists(desc)) {
      if (!(content instanceof Uint8Array)) content.destroy();
      return;
    }
    const { algorithm, hex } = parseDigest(desc.digest);
    const dir = join(this.dir, 'blobs', algorithm);
    if (!this.blobDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.blobDirs.add(dir);
    }
    // The temp file sits next to the final path so rename is atomic (same filesystem).
    const tmp = join(dir, `.tmp-${hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
    try {
      // flush: fsync before close, so a crash never leaves a renamed but empty blob.
      if (content instanceof Uint8Array) {
        // Bytes in memory are checked whole and written at once: no stream for a small blob.
        const actual = digestOf(content, algorithm);
        if (actual !== desc.digest || content.length !== desc.size) throw new DigestMismatchError(`${this.location}@${desc.digest}`, desc.digest, actual);
        await writeFile(tmp, content, { flag: 'wx', mode: 0o644, flush: true });
      } else {
        const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true });
        await pipeline(content, verifyingStream(desc, `${this.location}@${desc.digest}`), out);
      }
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
