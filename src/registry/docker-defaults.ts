import { dirname, join } from 'node:path';
import { RegistryClient, type RegistryClientOptions } from './client.js';
import { defaultCredentialStore } from './credentials.js';
import { dockerConfigPath } from './docker-config.js';
import type { TransportOptions } from './transport.js';

/** Docker's system-wide per-registry TLS directory. */
export const DOCKER_CERTS_DIR = '/etc/docker/certs.d';

/**
 * Transport settings as the Docker CLI has them, under `options`: TLS material from
 * /etc/docker/certs.d (or `options.certsDir`) and from the certs.d beside the user's config.json.
 */
export function dockerTransportOptions(options: TransportOptions = {}, env: NodeJS.ProcessEnv = process.env): TransportOptions {
  return {
    ...options,
    certsDir: options.certsDir ?? DOCKER_CERTS_DIR,
    certsDirs: [...(options.certsDirs ?? []), join(dirname(dockerConfigPath(env)), 'certs.d')],
  };
}

/**
 * A registry client as a Docker user expects it (the CLI's): Docker's TLS directories, and the
 * credentials of `docker login` and `podman login` (config.json, its helpers and stores;
 * containers' auth.json) unless `options.credentials` names others.
 */
export function dockerRegistryClient(options: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({ ...dockerTransportOptions(options), credentials: options.credentials ?? defaultCredentialStore() });
}
