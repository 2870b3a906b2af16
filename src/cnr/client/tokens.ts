import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { InputError } from '../../oci/errors.js';
import { writeFileAtomic } from '../../util/files.js';

/**
 * The tokens of `cnab-oci cnr login`, one per CNR server, in
 * `${XDG_CONFIG_HOME:-~/.config}/cnab-oci/cnr-auth.json` (or `$CNAB_OCI_CNR_AUTH_FILE`):
 *
 *   {"auths": {"host[:port]": {"token": "basic ..."}}}
 *
 * The file is rewritten whole (temporary file, fsync, rename) with mode 0600; entries and fields
 * this code does not know are kept as they are. A token is never printed.
 */
export interface CnrAuthFile {
  auths: Record<string, { token: string } & Record<string, unknown>>;
  [key: string]: unknown;
}

export function cnrAuthFilePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CNAB_OCI_CNR_AUTH_FILE) return env.CNAB_OCI_CNR_AUTH_FILE;
  const config = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(config, 'cnab-oci', 'cnr-auth.json');
}

/** The key of a server in the file: its `host[:port]`, lowercase (host names are case-insensitive). */
export function tokenKey(host: string): string {
  return host.toLowerCase();
}

/** The file's content; empty when it does not exist. */
export async function readCnrAuthFile(file: string = cnrAuthFilePath()): Promise<CnrAuthFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { auths: {} };
    if (code === 'EACCES') throw new InputError(`${file}: permission denied`);
    throw new InputError(`${file}: cannot read (${code ?? String(err)})`);
  }
  if (text.trim() === '') return { auths: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Never echo the content: it holds tokens.
    throw new InputError(`${file}: not valid JSON; fix or remove it`);
  }
  if (!isObject(parsed)) throw new InputError(`${file}: expected a JSON object {"auths": {...}}`);
  const auths = parsed.auths ?? {};
  if (!isObject(auths)) throw new InputError(`${file}: "auths" must be an object`);
  for (const [key, entry] of Object.entries(auths)) {
    if (!isObject(entry) || typeof entry.token !== 'string') throw new InputError(`${file}: auths.${JSON.stringify(key)} must be {"token": "..."}`);
  }
  return { ...parsed, auths: auths as CnrAuthFile['auths'] };
}

/** The stored token for a server, if any. */
export async function loadCnrToken(host: string, file: string = cnrAuthFilePath()): Promise<string | undefined> {
  const content = await readCnrAuthFile(file);
  const token = content.auths[tokenKey(host)]?.token;
  return token === '' ? undefined : token;
}

/** Store (or replace) the token of a server, keeping every other entry. */
export async function saveCnrToken(host: string, token: string, file: string = cnrAuthFilePath()): Promise<void> {
  const content = await readCnrAuthFile(file);
  const key = tokenKey(host);
  content.auths = { ...content.auths, [key]: { ...content.auths[key], token } };
  await write(file, content);
}

/** Forget the token of a server; false when there was none. */
export async function removeCnrToken(host: string, file: string = cnrAuthFilePath()): Promise<boolean> {
  const content = await readCnrAuthFile(file);
  const key = tokenKey(host);
  if (!(key in content.auths)) return false;
  const { [key]: _removed, ...rest } = content.auths;
  content.auths = rest;
  await write(file, content);
  return true;
}

async function write(file: string, content: CnrAuthFile): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new InputError(`${dirname(file)}: cannot create (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  await writeFileAtomic(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
