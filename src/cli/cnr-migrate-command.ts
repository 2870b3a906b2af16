import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { CnrClient } from '../cnr/client/client.js';
import type { MigrateEvent } from '../cnr/migrate/migrate.js';
import type { CnrSource } from '../cnr/migrate/sources.js';
import type { RegistryClient } from '../registry/client.js';
import type { StorageSpec } from '../cnr/store/open.js';
import type { RepositorySet } from '../cnr/store/repositories.js';
import { CnabOciError, InputError } from '../oci/errors.js';
import { clientCommand, openClient, serverAddress, type PrefixOption } from './cnr-client-options.js';
import { context, positiveInt } from './commands.js';
import { formatBytes, type Output } from './output.js';
import { redactSecrets } from './redact.js';

/** `cnab-oci cnr migrate SRC DST`: a whole CNR registry (a live server, or the reference's store) into CNR storage over OCI. */
export function registerCnrMigrateCommand(cnr: Command): void {
  clientCommand(cnr, 'migrate')
    .description('copy every package, release, media type, metadata, created_at and channel of a CNR registry into CNR storage (what cnr serve --storage serves); run again to finish an interrupted one')
    .argument('<source>', 'appr-store:DIR (a reference server\'s data directory) or a CNR server (host[:port] or a URL such as https://old.example.com/cnr)')
    .argument('<destination>', 'oci:DIR or REGISTRY/PREFIX, as cnr serve --storage')
    .option('--namespace <ns>', 'only this namespace')
    .option('--dry-run', 'say what would be copied; write nothing', false)
    .addOption(new Option('--concurrency <n>', 'packages migrated at once').argParser(positiveInt).default(4))
    .action(async (sourceArg: string, destinationArg: string, opts: PrefixOption & { namespace?: string; dryRun: boolean; concurrency: number }, cmd: Command) => {
      // The store and the migration load with this command only.
      const [{ parseStorage }, { CnrStore }] = await Promise.all([import('../cnr/store/open.js'), import('../cnr/store/store.js')]);
      const spec = parseStorage(destinationArg);
      const { out, client: registryClient } = await context(cmd);
      let source: CnrSource;
      let sourceClient: CnrClient | undefined;
      if (sourceArg.startsWith('appr-store:')) {
        const dir = sourceArg.slice('appr-store:'.length);
        if (dir === '') throw new InputError('cnr migrate: appr-store: needs a directory (appr-store:/var/lib/cnr)');
        const { apprStoreSource } = await import('../cnr/migrate/sources.js');
        source = await apprStoreSource(dir);
      } else {
        const server = await serverAddress(sourceArg, opts);
        sourceClient = (await openClient(cmd, server)).client;
        const { serverSource } = await import('../cnr/migrate/sources.js');
        source = serverSource(sourceClient, sourceArg);
      }
      try {
        const repositories = await destinationRepositories(spec, opts.dryRun, () => registryClient);
        if (spec.kind === 'registry') await registryClient.ping(spec.registry);
        const store = new CnrStore(repositories);
        const progress = new MigrateProgress(out, opts.dryRun);
        const { migrateCnr } = await import('../cnr/migrate/migrate.js');
        const summary = await migrateCnr(progress.wrap(source), store, {
          ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
          dryRun: opts.dryRun,
          concurrency: opts.concurrency,
          onEvent: (e) => progress.event(e),
        });
        const what = opts.dryRun
          ? `dry run: would copy ${summary.releases} release(s) (${formatBytes(summary.bytes)}) of ${summary.packages} package(s) from ${source.location} to ${repositories.location}`
          : `migrated ${summary.packages} package(s) from ${source.location} to ${repositories.location}: ${summary.releases} release(s) copied (${formatBytes(summary.bytes)}), ${summary.channels} channel(s) set`;
        out.result(`${what}, ${summary.present} already present, ${summary.skipped} skipped, ${summary.failed} failed`);
        out.data({ source: source.location, destination: repositories.location, dryRun: opts.dryRun, ...summary });
        if (summary.skipped > 0 || summary.failed > 0) {
          throw new CnabOciError(`cnr migrate: ${summary.skipped} release(s) skipped (did not verify), ${summary.failed} failed; the rest was migrated${opts.dryRun ? '' : ', run again to retry'}`);
        }
      } finally {
        await Promise.all([sourceClient?.close(), registryClient.close()]);
      }
    });
}

/**
 * A dry run does not create the destination: a layout directory that is not there is read as
 * empty. Otherwise the storage `cnr serve --storage` would open.
 */
async function destinationRepositories(spec: StorageSpec, dryRun: boolean, client: () => RegistryClient): Promise<RepositorySet> {
  const [{ stat }, { LayoutRepositories }, { openStorage }] = await Promise.all([import('node:fs/promises'), import('../cnr/store/layout-repositories.js'), import('../cnr/store/open.js')]);
  if (dryRun && spec.kind === 'layout' && !(await stat(spec.dir).catch(() => undefined))) return new LayoutRepositories(resolve(spec.dir));
  return openStorage(spec, client);
}

/**
 * Progress of a migration. On a terminal: a line per package when its releases are done (and
 * every release skipped or failed). Otherwise: a line per release (copied, present, skipped,
 * failed) and per channel set. The lines go to stdout, or to stderr with --json (stdout then
 * carries the summary alone).
 */
class MigrateProgress {
  private readonly stream: NodeJS.WriteStream;
  private readonly perPackage: boolean;
  private readonly counts = new Map<string, { copied: number; present: number; skipped: number; failed: number }>();

  constructor(private readonly out: Output, private readonly dryRun: boolean) {
    this.stream = out.json ? process.stderr : process.stdout;
    this.perPackage = this.stream.isTTY === true;
  }

  /** The source, reporting each package once its releases have been handled (its channels are read next). */
  wrap(source: CnrSource): CnrSource {
    return {
      location: source.location,
      packages: (filter) => source.packages(filter),
      releases: (pkg) => source.releases(pkg),
      blob: (release) => source.blob(release),
      channels: (pkg) => {
        if (this.perPackage) this.packageDone(pkg);
        return source.channels(pkg);
      },
    };
  }

  event(e: MigrateEvent): void {
    const c = this.counts.get(e.package) ?? { copied: 0, present: 0, skipped: 0, failed: 0 };
    this.counts.set(e.package, c);
    const at = (release: string | undefined, mediaType: string | undefined) => (release === undefined ? e.package : `${e.package}@${release} (${mediaType})`);
    switch (e.type) {
      case 'release':
        if (e.action === 'present') c.present++;
        else c.copied++;
        if (!this.perPackage) {
          const label = e.action === 'copied' ? 'copied    ' : e.action === 'would-copy' ? 'would copy' : 'present   ';
          this.line(`${label} ${e.package}@${e.release} (${e.mediaType}, ${e.bytes} bytes)`);
        }
        break;
      case 'channel':
        if (!this.perPackage && e.action !== 'present') this.line(`${e.action === 'set' ? 'channel   ' : 'would set '} ${e.package}:${e.channel}`);
        break;
      case 'skipped':
        c.skipped++;
        this.problem(`skipped    ${at(e.release, e.mediaType)}: ${e.reason}`);
        break;
      case 'failed':
        c.failed++;
        this.problem(`failed     ${at(e.release, e.mediaType)}: ${e.reason}`);
        break;
    }
  }

  private packageDone(pkg: string): void {
    const c = this.counts.get(pkg) ?? { copied: 0, present: 0, skipped: 0, failed: 0 };
    const parts = [`${c.copied} ${this.dryRun ? 'to copy' : 'copied'}`, `${c.present} present`];
    if (c.skipped > 0) parts.push(`${c.skipped} skipped`);
    if (c.failed > 0) parts.push(`${c.failed} failed`);
    this.line(`${pkg}: ${parts.join(', ')}`);
  }

  private problem(text: string): void {
    if (this.perPackage) this.out.warn(redactSecrets(text));
    else this.line(redactSecrets(text));
  }

  private line(text: string): void {
    this.stream.write(`${text}\n`);
  }
}

