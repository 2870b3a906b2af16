import { Command, Option } from 'commander';
import { InputError } from '../oci/errors.js';
import { DEFAULT_MAX_BODY } from '../cnr/server/limits.js';
import type { RegistryClient } from '../registry/client.js';
import { registerCnrClientCommands } from './cnr-client-commands.js';
import { registerCnrMigrateCommand } from './cnr-migrate-command.js';
import { context } from './commands.js';

/** `cnab-oci cnr ...`: the Container Native Registry server (and, later, its client). */
export function registerCnrCommands(program: Command): void {
  const cnr = program.command('cnr').description('Container Native Registry (app registry): serve the CNR API with packages stored as OCI content');

  cnr
    .command('serve')
    .description('serve the CNR API (cnr-server and Quay /cnr) over an OCI layout directory or an OCI registry')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:5000')
    .option('--storage <oci:DIR|REGISTRY/PREFIX>', 'where packages are stored: an OCI layout directory per package, or repositories under a registry prefix', 'oci:./cnr-data')
    .option('--htpasswd <file>', 'users (bcrypt htpasswd, as registry:2): writes need their credentials')
    .option('--read-only', 'refuse every write', false)
    .option('--anonymous-writes', 'allow anonymous writes on a non-loopback address', false)
    .addOption(new Option('--max-body <bytes>', 'largest request body (a push), e.g. 64MiB').argParser(byteSize).default(DEFAULT_MAX_BODY, '64MiB'))
    .addOption(new Option('--max-unpacked <bytes>', 'largest unpacked size of a pushed package').argParser(byteSize).default(512 * 1024 * 1024, '512MiB'))
    .addOption(new Option('--cache-size <bytes>', 'memory for manifests and small blobs read from storage').argParser(byteSize).default(64 * 1024 * 1024, '64MiB'))
    .addOption(new Option('--list-ttl <seconds>', 'how long the package list may be served before it is rebuilt (changes through other servers show within this)').argParser(seconds).default(5))
    .addOption(new Option('--log-format <format>', 'access log on stderr').choices(['text', 'json', 'none']).default('text'))
    .action(async (opts, cmd: Command) => {
      // The server (fastify) is loaded by this command only: every other command starts faster.
      const [{ checkExposure, createCnrServer }, { Htpasswd }, { openStorage, parseStorage }, { CnrStore }] = await Promise.all([
        import('../cnr/server/app.js'),
        import('../cnr/server/auth.js'),
        import('../cnr/store/open.js'),
        import('../cnr/store/store.js'),
      ]);
      const { host, port } = parseListen(opts.listen);
      const users = opts.htpasswd ? await Htpasswd.load(opts.htpasswd) : undefined;
      checkExposure({ host, readOnly: opts.readOnly, anonymousWrites: opts.anonymousWrites, ...(users ? { users } : {}) });
      const spec = parseStorage(opts.storage);
      let client: RegistryClient | undefined;
      const { out, client: registryClient } = await context(cmd);
      const repositories = await openStorage(spec, () => (client = registryClient));
      if (spec.kind === 'registry') await registryClient.ping(spec.registry);
      const store = new CnrStore(repositories, { cacheBytes: opts.cacheSize, listTtlMs: opts.listTtl * 1000, maxUnpackedSize: opts.maxUnpacked });
      const app = createCnrServer({
        store,
        readOnly: opts.readOnly,
        maxBodyBytes: opts.maxBody,
        accessLog: opts.logFormat === 'none' ? false : opts.logFormat,
        version: process.env.npm_package_version ?? '0.1.0',
        ...(users ? { users } : {}),
      });
      try {
        await app.listen({ host, port });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new InputError(`--listen ${opts.listen}: cannot listen (${code})`);
        throw err;
      }
      const address = app.server.address();
      const shown = typeof address === 'object' && address ? `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : opts.listen;
      out.note(`cnr serve: listening on http://${shown}, packages in ${repositories.location}${opts.readOnly ? ' (read-only)' : ''}${users ? ', writes need credentials' : ''}`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          out.note(`cnr serve: ${signal}, finishing requests in flight`);
          void app.close().then(() => client?.close()).finally(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });

  registerCnrClientCommands(cnr);
  registerCnrMigrateCommand(cnr);
}

function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new InputError(`--listen: expected HOST:PORT (127.0.0.1:5000, [::1]:5000, 0.0.0.0:5000), got ${JSON.stringify(value)}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1000, kb: 1000, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3 };

/** `1048576`, `64MiB`, `10MB`, `512k`. */
export function byteSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InputError(`expected a size in bytes such as 1048576, 64MiB or 10MB, got ${JSON.stringify(value)}`);
  return Math.floor(Number(m[1]) * unit);
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InputError(`--list-ttl: expected seconds (0 or more), got ${JSON.stringify(value)}`);
  return n;
}
