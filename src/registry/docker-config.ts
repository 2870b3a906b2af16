import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../oci/errors.js';
import { DOCKER_HUB } from '../oci/reference.js';

/**
 * Docker's config.json as Docker reads it: where it is, its `auths`/`credsStore`/`credHelpers`
 * fields, and how its keys name registries. Looking credentials up (credentials.ts) and saving
 * them (docker-login.ts) both start here.
 */

/** The key Docker files Docker Hub credentials under. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

const AuthEntry = z.object({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
  registrytoken: z.string().optional(),
}).passthrough();
/** One `auths` entry: base64 `auth`, or username/password, or tokens. */
export type DockerAuthEntry = z.infer<typeof AuthEntry>;

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
  const json = await readConfigJson(path);
  if (json === undefined) return {};
  const parsed = DockerConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(`${path}: field ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/**
 * A config file's JSON, unchecked; undefined when the file is missing or empty (an empty file
 * is no configuration, as Docker reads it: a `touch`ed config.json is common).
 */
export async function readConfigJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError(`${path}: cannot read Docker config (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new InputError(`${path}: not valid JSON`);
  }
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
