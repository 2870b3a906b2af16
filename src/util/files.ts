import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../oci/errors.js';

/**
 * Write a file so that readers see either the old content or the whole new content:
 * a temporary file in the same directory, fsync, then rename over the target.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, options: { mode?: number } = {}): Promise<void> {
  return writeFilesAtomic([{ path, data, mode: options.mode }]);
}

/**
 * Write several files that belong together (a bundle and its relocation map): every one is
 * written whole to a temporary name first, and only when all are on disk are they renamed into
 * place, so a failure leaves none of them changed.
 */
export async function writeFilesAtomic(files: Array<{ path: string; data: Uint8Array | string; mode?: number }>): Promise<void> {
  const staged: Array<{ tmp: string; path: string }> = [];
  try {
    for (const { path, data, mode } of files) {
      const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
      const fh = await open(tmp, 'wx', mode ?? 0o644).catch((err: NodeJS.ErrnoException) => {
        throw outputError(path, err);
      });
      staged.push({ tmp, path });
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    for (const { tmp, path } of staged) await rename(tmp, path).catch((err: NodeJS.ErrnoException) => {
      throw outputError(path, err);
    });
  } catch (err) {
    await Promise.all(staged.map(({ tmp }) => rm(tmp, { force: true })));
    throw err;
  }
}

function outputError(path: string, err: NodeJS.ErrnoException): Error {
  if (err.code === 'ENOENT') return new InputError(`${path}: directory ${dirname(path)} does not exist`);
  if (err.code === 'EACCES') return new InputError(`${path}: permission denied`);
  if (err.code === 'EISDIR') return new InputError(`${path}: is a directory`);
  return err;
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
