import { join } from 'node:path';
import { InputError } from '../oci/errors.js';
import type { Credential, CredentialStore } from './credential-store.js';
import { credentialFromHelper, runCredentialHelper, type HelperRunner } from './credential-helpers.js';
import { configKeyFor, configKeyHost, dockerConfigPath, helperFor, readDockerConfig, type DockerAuthEntry, type DockerConfig } from './docker-config.js';

/**
 * Looking credentials up: the stores a RegistryClient asks (Docker's config.json and its
 * helpers, the containers tools' auth.json, fixed ones) and how they chain.
 */

// The public API (src/index.ts) and the CLI take config.json's path and key spelling, and
// `docker login`/`logout`, from this module.
export { configKeyFor, configKeyHost, dockerConfigPath, readDockerConfig } from './docker-config.js';
export { eraseDockerCredential, saveDockerCredential } from './docker-login.js';
export type { Credential, CredentialStore } from './credential-store.js';

/** No credentials at all: anonymous access. */
export const anonymous: CredentialStore = { get: async () => undefined };

/** Fixed credentials by registry host, for library users and tests. */
export function staticCredentials(byRegistry: Record<string, Credential>): CredentialStore {
  return { get: async (registry) => byRegistry[registry] };
}

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

function findAuthEntry(cfg: DockerConfig, registry: string): DockerAuthEntry | undefined {
  const auths = cfg.auths ?? {};
  const exact = auths[configKeyFor(registry)] ?? auths[registry];
  if (exact) return exact;
  for (const [key, entry] of Object.entries(auths)) if (configKeyHost(key) === registry) return entry;
  return undefined;
}

function credentialFromEntry(entry: DockerAuthEntry, path: string, registry: string): Credential | undefined {
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
