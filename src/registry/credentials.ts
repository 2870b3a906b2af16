import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../oci/errors.js';
import { DOCKER_HUB } from '../oci/reference.js';

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
  let host = key.replace(/^[a-z]+:\/\//i, '');
  host = host.split('/')[0] ?? host;
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
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
    async get(registry: string): Promise<Credential | undefined> {
      config ??= readDockerConfig(path);
      const cfg = await config;
      const helper = cfg.credHelpers?.[registry] ?? (registry === DOCKER_HUB ? cfg.credHelpers?.['index.docker.io'] : undefined) ?? cfg.credsStore;
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
