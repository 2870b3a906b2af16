import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../oci/errors.js';

/**
 * Write a file so that readers see either the old content or the whole new content:
 * a temporary file in the same directory, fsync, then rename over the target.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: { mode?: number } = {}): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', options.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InputError(`${path}: directory ${dirname(path)} does not exist`);
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw new InputError(`${path}: permission denied`);
    throw err;
  }
}

/** Read a user-supplied input file, with a one-line error naming it. */
export async function readInputFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${path}: no such file`);
    if (code === 'EISDIR') throw new InputError(`${path}: is a directory, expected a file`);
    if (code === 'EACCES') throw new InputError(`${path}: permission denied`);
    throw new InputError(`${path}: cannot read (${code ?? String(err)})`);
  }
}
