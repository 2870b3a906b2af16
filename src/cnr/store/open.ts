import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputError } from '../../oci/errors.js';
import type { RegistryClient } from '../../registry/client.js';
import { LayoutRepositories } from './layout-repositories.js';
import { RegistryRepositories } from './registry-repositories.js';
import type { RepositorySet } from './repositories.js';

export type StorageSpec = { kind: 'layout'; dir: string } | { kind: 'registry'; registry: string; prefix: string };

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST = /^(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+|[a-zA-Z0-9.-]+:\d+|\[[0-9a-fA-F:]+\](?::\d+)?)(?::\d+)?$/;

/** `oci:DIR`, or `REGISTRY[/PREFIX]` (a host with a dot or a port, or localhost, as Docker tells registries from paths). */
export function parseStorage(spec: string): StorageSpec {
  if (spec.startsWith('oci:')) {
    const dir = spec.slice('oci:'.length);
    if (dir === '') throw new InputError('--storage oci: needs a directory (oci:./cnr-data)');
    return { kind: 'layout', dir };
  }
  const slash = spec.indexOf('/');
  const registry = slash < 0 ? spec : spec.slice(0, slash);
  const prefix = slash < 0 ? '' : spec.slice(slash + 1).replace(/\/+$/, '');
  if (!HOST.test(registry)) {
    throw new InputError(`--storage ${JSON.stringify(spec)}: expected oci:DIR or REGISTRY/PREFIX with a registry host such as registry.example.com or localhost:5000`);
  }
  if (prefix !== '' && !prefix.split('/').every((c) => PATH_COMPONENT.test(c))) {
    throw new InputError(`--storage ${JSON.stringify(spec)}: the prefix ${JSON.stringify(prefix)} is not a valid repository path (lowercase components separated by /)`);
  }
  return { kind: 'registry', registry, prefix };
}

/** The repositories a storage spec names; a layout directory is created when missing. */
export async function openStorage(spec: StorageSpec, client: () => RegistryClient): Promise<RepositorySet> {
  if (spec.kind === 'layout') {
    const dir = resolve(spec.dir);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new InputError(`${spec.dir}: cannot create the storage directory (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    return new LayoutRepositories(dir);
  }
  return new RegistryRepositories(client(), spec.registry, spec.prefix);
}
