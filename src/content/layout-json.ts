import { readFile, writeFile } from 'node:fs/promises';
import type { z } from 'zod';
import { InputError } from '../oci/errors.js';

/**
 * The two JSON files of an OCI layout (`oci-layout`, `index.json`): read and created with
 * errors that name the file, since a layout directory is often written by another tool.
 */

export async function readJsonFile(file: string, missingMessage: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InputError(missingMessage);
    throw new InputError(`${file}: cannot read (${code ?? String(err)})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: invalid JSON (${(err as Error).message.split('\n')[0]})`);
  }
}

export async function writeIfMissing(file: string, data: string): Promise<void> {
  try {
    await writeFile(file, data, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    throw new InputError(`${file}: cannot create (${code ?? String(err)})`);
  }
}

export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  return path ? `${path}: ${issue.message}` : issue.message;
}
