import { mkdir, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InputError } from '../oci/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { runCredentialHelper, type HelperRunner } from './credential-helpers.js';
import { configKeyFor, configKeyHost, dockerConfigPath, helperFor, readConfigJson, readDockerConfig } from './docker-config.js';

/**
 * What `docker login` and `docker logout` write: a credential saved through the registry's
 * helper or into config.json, and removed again. config.json is edited as raw JSON so that
 * fields this project does not know survive the rewrite.
 */

export interface SaveCredentialOptions {
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  runHelper?: HelperRunner;
}

/** Where a credential went or came from: a helper (`docker-credential-<name>`) or config.json. */
export interface CredentialLocation {
  helper?: string;
  configPath: string;
}

/**
 * Save a credential as `docker login` does: through the registry's credential helper
 * (`credHelpers[host]`, else `credsStore`) with the helper's `store` action, else as
 * `auths[key].auth` in config.json. config.json is rewritten atomically with mode 0600 and
 * every other field kept; with a helper only an empty `auths[key]` marker is written there,
 * as Docker does.
 */
export async function saveDockerCredential(registry: string, cred: { username: string; password: string }, options: SaveCredentialOptions = {}): Promise<CredentialLocation> {
  const { key, path, raw, helper } = await openLogin(registry, options);
  const auths = objectField(raw, 'auths', path);
  const previous = typeof auths[key] === 'object' && auths[key] !== null ? (auths[key] as Record<string, unknown>) : {};
  const { auth: _a, username: _u, password: _p, identitytoken: _i, registrytoken: _r, ...kept } = previous;
  if (helper) {
    const runHelper = options.runHelper ?? runCredentialHelper;
    await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: cred.username, Secret: cred.password }));
    auths[key] = kept;
  } else {
    auths[key] = { ...kept, auth: Buffer.from(`${cred.username}:${cred.password}`).toString('base64') };
  }
  await writeConfig(path, raw);
  return { helper, configPath: path };
}

/**
 * Remove a registry's credential as `docker logout` does: the helper's `erase`, and every
 * `auths` entry for that host (any spelling). Returns false when there was nothing to remove.
 */
export async function eraseDockerCredential(registry: string, options: SaveCredentialOptions = {}): Promise<CredentialLocation & { removed: boolean }> {
  const { host, key, path, raw, helper } = await openLogin(registry, options);
  let removed = false;
  if (helper) {
    const runHelper = options.runHelper ?? runCredentialHelper;
    removed = Boolean((await runHelper(helper, 'get', key)).trim());
    if (removed) await runHelper(helper, 'erase', key);
  }
  const auths = raw.auths;
  if (auths && typeof auths === 'object') {
    for (const k of Object.keys(auths)) {
      if (configKeyHost(k) !== host) continue;
      delete (auths as Record<string, unknown>)[k];
      removed = true;
    }
    if (removed) await writeConfig(path, raw);
  }
  return { helper, configPath: path, removed };
}

/** What login and logout both start from: the registry's key, config.json (raw) and its helper. */
async function openLogin(registry: string, options: SaveCredentialOptions): Promise<{ host: string; key: string; path: string; raw: Record<string, unknown>; helper: string | undefined }> {
  const host = configKeyHost(registry);
  const key = configKeyFor(host);
  const path = await writablePath(options.configPath ?? dockerConfigPath(options.env));
  const raw = await readRawConfig(path);
  const cfg = await readDockerConfig(path);
  return { host, key, path, raw, helper: helperFor(cfg, host) };
}

/** Docker follows a symlinked config.json and replaces its target. */
async function writablePath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

async function readRawConfig(path: string): Promise<Record<string, unknown>> {
  const json = await readConfigJson(path);
  if (json === undefined) return {};
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new InputError(`${path}: expected a JSON object`);
  return json as Record<string, unknown>;
}

function objectField(raw: Record<string, unknown>, field: string, path: string): Record<string, unknown> {
  const value = raw[field];
  if (value === undefined || value === null) {
    const created: Record<string, unknown> = {};
    raw[field] = created;
    return created;
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw new InputError(`${path}: field ${field}: expected an object`);
  return value as Record<string, unknown>;
}

async function writeConfig(path: string, raw: Record<string, unknown>): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, `${JSON.stringify(raw, null, '\t')}\n`, { mode: 0o600 });
}
