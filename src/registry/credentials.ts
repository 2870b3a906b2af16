import { execFile } from 'node:child_process';
import { mkdir, readFile, realpath } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../oci/errors.js';
import { DOCKER_HUB } from '../oci/reference.js';
import { writeFileAtomic } from '../util/files.js';

/**
 * A credential for one registry. `identityToken` is an OAuth2 refresh token (what `docker login`
 * stores for some registries); `registryToken` is a bearer token sent as is.
 */
export interface Credential {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
}

/** Where credentials come from. `registry` is a normalised host (`docker.io`, `localhost:5000`). */
export interface CredentialStore {
  get(registry: string): Promise<Credential | undefined>;
}

/** No credentials at all: anonymous access. */
export const anonymous: CredentialStore = { get: async () => undefined };

/** Fixed credentials by registry host, for library users and tests. */
export function staticCredentials(byRegistry: Record<string, Credential>): CredentialStore {
  return { get: async (registry) => byRegistry[registry] };
}

/** The key Docker files Docker Hub credentials under. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

const AuthEntry = z.object({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
  registrytoken: z.string().optional(),
}).passthrough();

export const DockerConfigSchema = z.object({
  auths: z.record(z.string(), AuthEntry).optional(),
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
}).passthrough();
export type DockerConfig = z.infer<typeof DockerConfigSchema>;

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, as Docker resolves it. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

/** Read Docker's config.json; a missing file is an empty config, a broken one a clear error. */
export async function readDockerConfig(path: string): Promise<DockerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new InputError(`${path}: cannot read Docker config (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // An empty file is no configuration, as Docker reads it (a `touch`ed config.json is common).
  if (text.trim() === '') return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InputError(`${path}: not valid JSON`);
  }
  const parsed = DockerConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(`${path}: field ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** The host part of a config.json `auths` key: `https://host/v1/` -> `host`. Docker accepts both forms. */
export function configKeyHost(key: string): string {
  let host = key.trim().replace(/^[a-z]+:\/\//i, '');
  host = (host.split('/')[0] ?? host).toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
}

/**
 * The credential helper Docker uses for a registry: `credHelpers[host]` (any spelling of the
 * host: Docker Hub's aliases all count), else `credsStore`.
 */
export function helperFor(cfg: DockerConfig, registry: string): string | undefined {
  const helpers = cfg.credHelpers ?? {};
  if (helpers[registry]) return helpers[registry];
  for (const [key, helper] of Object.entries(helpers)) if (configKeyHost(key) === registry) return helper;
  return cfg.credsStore || undefined;
}

/** The key `docker login` would use for a registry (Docker Hub has its historical URL). */
export function configKeyFor(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_CONFIG_KEY : registry;
}

export interface HelperRunner {
  (helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<string>;
}

/** Run `docker-credential-<helper> <action>` with `input` on stdin, as the helper protocol says. */
export const runCredentialHelper: HelperRunner = (helper, action, input) =>
  new Promise((resolve, reject) => {
    const program = `docker-credential-${helper}`;
    const child = execFile(program, [action], { timeout: 30_000, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const out = `${stdout}`.trim() || `${stderr}`.trim();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new InputError(`credential helper ${program} not found on PATH (named in Docker's config.json)`));
      }
      // The protocol's "no credentials" answer is a message on stdout and a non-zero exit.
      if (/credentials not found/i.test(out)) return resolve('');
      reject(new InputError(`credential helper ${program} ${action} failed: ${out.split('\n')[0]?.slice(0, 200) ?? 'no output'}`));
    });
    child.stdin?.end(input);
  });

const HelperAnswer = z.object({ Username: z.string().optional(), Secret: z.string().optional() });

/**
 * Credentials exactly as Docker finds them: `credHelpers[host]`, else `credsStore`, else the
 * `auths` entry (base64 `auth`, or username/password, or an identity token).
 */
export function dockerCredentialStore(options: { configPath?: string; env?: NodeJS.ProcessEnv; runHelper?: HelperRunner } = {}): CredentialStore {
  const path = options.configPath ?? dockerConfigPath(options.env);
  const runHelper = options.runHelper ?? runCredentialHelper;
  let config: Promise<DockerConfig> | undefined;
  return {
    async get(name: string): Promise<Credential | undefined> {
      const registry = configKeyHost(name);
      config ??= readDockerConfig(path);
      const cfg = await config;
      const helper = helperFor(cfg, registry);
      if (helper) {
        const fromHelper = await credentialFromHelper(runHelper, helper, registry);
        if (fromHelper) return fromHelper;
        // Docker falls back to the plain `auths` entry when the store has nothing.
      }
      const entry = findAuthEntry(cfg, registry);
      return entry ? credentialFromEntry(entry, path, registry) : undefined;
    },
  };
}

async function credentialFromHelper(runHelper: HelperRunner, helper: string, registry: string): Promise<Credential | undefined> {
  const out = await runHelper(helper, 'get', configKeyFor(registry));
  if (!out.trim()) return undefined;
  let answer: z.infer<typeof HelperAnswer>;
  try {
    answer = HelperAnswer.parse(JSON.parse(out));
  } catch {
    throw new InputError(`credential helper docker-credential-${helper} returned something that is not a credential for ${registry}`);
  }
  if (!answer.Secret) return undefined;
  // The protocol marks identity tokens with the user name "<token>".
  if (answer.Username === '<token>') return { identityToken: answer.Secret };
  return { username: answer.Username, password: answer.Secret };
}

function findAuthEntry(cfg: DockerConfig, registry: string): z.infer<typeof AuthEntry> | undefined {
  const auths = cfg.auths ?? {};
  const exact = auths[configKeyFor(registry)] ?? auths[registry];
  if (exact) return exact;
  for (const [key, entry] of Object.entries(auths)) if (configKeyHost(key) === registry) return entry;
  return undefined;
}

function credentialFromEntry(entry: z.infer<typeof AuthEntry>, path: string, registry: string): Credential | undefined {
  const cred: Credential = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new InputError(`${path}: auths entry for ${registry}: "auth" is not base64 of user:password`);
    cred.username = decoded.slice(0, colon);
    cred.password = decoded.slice(colon + 1);
  } else if (entry.username !== undefined) {
    cred.username = entry.username;
    cred.password = entry.password;
  }
  if (entry.identitytoken) cred.identityToken = entry.identitytoken;
  if (entry.registrytoken) cred.registryToken = entry.registrytoken;
  return Object.keys(cred).length > 0 ? cred : undefined;
}

/**
 * The containers tools' (podman, skopeo, buildah) credential file: `$REGISTRY_AUTH_FILE`, else
 * `$XDG_RUNTIME_DIR/containers/auth.json`; undefined when neither is set.
 */
export function containersAuthPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.REGISTRY_AUTH_FILE) return env.REGISTRY_AUTH_FILE;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json');
  return undefined;
}

/**
 * Credentials from a containers `auth.json` (same `auths` format as Docker's config.json).
 * Entries are per registry host; entries scoped to a repository (`host/ns/repo`) are ignored.
 */
export function containersAuthStore(options: { path?: string; env?: NodeJS.ProcessEnv } = {}): CredentialStore {
  const path = options.path ?? containersAuthPath(options.env);
  let config: Promise<DockerConfig> | undefined;
  return {
    async get(name: string): Promise<Credential | undefined> {
      if (!path) return undefined;
      const registry = configKeyHost(name);
      config ??= readDockerConfig(path);
      const auths = (await config).auths ?? {};
      for (const [key, entry] of Object.entries(auths)) {
        if (key.replace(/^[a-z]+:\/\//i, '').replace(/\/v[12]\/?$/, '').replace(/\/$/, '').includes('/')) continue;
        if (configKeyHost(key) === registry) return credentialFromEntry(entry, path, registry);
      }
      return undefined;
    },
  };
}

/** The first store that has a credential for the registry wins. */
export function chainCredentials(...stores: CredentialStore[]): CredentialStore {
  return {
    async get(registry: string): Promise<Credential | undefined> {
      for (const store of stores) {
        const cred = await store.get(registry);
        if (cred) return cred;
      }
      return undefined;
    },
  };
}

/**
 * What the CLI uses: Docker's config (and its helpers) first; the containers auth.json only
 * when Docker has nothing for that registry.
 */
export function defaultCredentialStore(options: { env?: NodeJS.ProcessEnv; runHelper?: HelperRunner } = {}): CredentialStore {
  return chainCredentials(dockerCredentialStore(options), containersAuthStore({ env: options.env }));
}

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
  const host = configKeyHost(registry);
  const key = configKeyFor(host);
  const path = await writablePath(options.configPath ?? dockerConfigPath(options.env));
  const raw = await readRawConfig(path);
  const cfg = await readDockerConfig(path);
  const helper = helperFor(cfg, host);
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
  const host = configKeyHost(registry);
  const key = configKeyFor(host);
  const path = await writablePath(options.configPath ?? dockerConfigPath(options.env));
  const raw = await readRawConfig(path);
  const cfg = await readDockerConfig(path);
  const helper = helperFor(cfg, host);
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

/** Docker follows a symlinked config.json and replaces its target. */
async function writablePath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

async function readRawConfig(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new InputError(`${path}: cannot read Docker config (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!text.trim()) return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InputError(`${path}: not valid JSON`);
  }
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
