import type { Command } from 'commander';
import type { CnrClient } from '../cnr/client/client.js';
import type { CnrServerAddress } from '../cnr/model/reference.js';
import { InputError } from '../oci/errors.js';
import { transportContext } from './commands.js';
import type { Output } from './output.js';

/** What every CNR client command shares: --prefix, the server address, and a client from the global flags. */

export type { GlobalOptions } from './commands.js';

export interface PrefixOption {
  prefix?: string;
}

/** Every client command takes --prefix: the server's base path, when discovery (/cnr, then the root) is not wanted. */
export function clientCommand(parent: Command, name: string): Command {
  return parent
    .command(name)
    .option('--prefix <path>', "the server's API base path, e.g. /cnr or '' (default: /cnr if it answers, else the root)");
}

export async function serverAddress(server: string | CnrServerAddress, opts: PrefixOption): Promise<CnrServerAddress> {
  const { parseServer } = await import('../cnr/model/reference.js');
  const address = typeof server === 'string' ? parseServer(server) : server;
  if (opts.prefix === undefined) return address;
  return { ...address, prefix: parsePrefix(opts.prefix) };
}

function parsePrefix(value: string): string {
  const trimmed = value.trim().replace(/\/+$/, '');
  const prefix = trimmed === '' || trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
  if (!/^(?:\/[A-Za-z0-9._~-]+)*$/.test(prefix)) throw new InputError(`--prefix ${JSON.stringify(value)}: expected a URL path such as /cnr, or '' for the root`);
  return prefix;
}

/** Output and a client of `server` from the global flags (TLS, insecure hosts, retries, --debug), with the stored token for its host. */
export async function openClient(cmd: Command, server: CnrServerAddress, withToken = true): Promise<{ out: Output; client: CnrClient }> {
  const { out, transport } = await transportContext(cmd);
  // Loaded on use: the client and the packing code are not paid for by every other command's start-up.
  const [{ loadCnrToken }, { CnrClient }] = await Promise.all([import('../cnr/client/tokens.js'), import('../cnr/client/client.js')]);
  const token = withToken ? await loadCnrToken(server.host) : undefined;
  return { out, client: new CnrClient(server, { ...transport, ...(token ? { token } : {}) }) };
}
