import { randomBytes } from 'node:crypto';
import { link, lstat, open, readFile, rename, rm } from 'node:fs/promises';
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
 * place, so a failure leaves none of them changed (see renameTogether).
 */
export async function writeFilesAtomic(files: Array<{ path: string; data: Uint8Array | string; mode?: number }>): Promise<void> {
  const staged: Staged[] = [];
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
    await renameTogether(staged);
  } catch (err) {
    await Promise.all(staged.map(({ tmp }) => rm(tmp, { force: true })));
    throw err;
  }
}

interface Staged {
  tmp: string;
  path: string;
}

/**
 * Rename staged files into place. One file's rename is atomic by itself. For several, each file
 * there is hard-linked aside before it is replaced, so when a later rename fails (a directory in
 * the way, say) the ones already replaced get their old content back and new ones are removed.
 */
async function renameTogether(staged: readonly Staged[]): Promise<void> {
  const rename1 = ({ tmp, path }: Staged) =>
    rename(tmp, path).catch((err: NodeJS.ErrnoException) => {
      throw outputError(path, err);
    });
  if (staged.length === 1) return rename1(staged[0]!);
  const done: Array<{ path: string; backup: string | undefined; existed: boolean }> = [];
  try {
    for (const file of staged) {
      const existed = (await lstat(file.path).catch(() => undefined)) !== undefined;
      const backup = existed ? await link(file.path, `${file.tmp}.old`).then(() => `${file.tmp}.old`, () => undefined) : undefined;
      done.push({ path: file.path, backup, existed });
      await rename1(file);
    }
  } catch (err) {
    // The failed file's own entry is undone too: putting its backup back over itself is harmless.
    for (const { path, backup, existed } of done.reverse()) {
      if (backup) await rename(backup, path).catch(() => undefined);
      else if (!existed) await rm(path, { force: true });
    }
    throw err;
  }
  await Promise.all(done.map(({ backup }) => (backup ? rm(backup, { force: true }) : undefined)));
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
