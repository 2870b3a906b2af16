import type { Command } from 'commander';
import type { RemoteView } from '../cnr/client/client.js';
import { CnrError } from '../cnr/model/errors.js';
import { parseChannelName, parseMediaType, type PackageName } from '../cnr/model/names.js';
import type { CnrServerAddress } from '../cnr/model/reference.js';
import { CnabOciError, InputError } from '../oci/errors.js';
import { loginPassword } from './auth-commands.js';
import { clientCommand, openClient, serverAddress, type GlobalOptions, type PrefixOption } from './cnr-client-options.js';
import { formatBytes, Output } from './output.js';

/**
 * `cnab-oci cnr login|logout|push|pull|show|list|channel|migrate`: a client of any CNR server
 * (cnr-server/appr, Quay's /cnr, `cnr serve`). The token of `login` is sent as Authorization to
 * its server by every other command, and never printed.
 */
export function registerCnrClientCommands(cnr: Command): void {
  clientCommand(cnr, 'login')
    .description('log in to a CNR server (POST /api/v1/users/login) and store its token for the other commands')
    .argument('<server>', 'host[:port] or a URL such as https://quay.io/cnr')
    .requiredOption('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (insecure: other users can see it; prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin', false)
    .action(async (serverArg: string, opts: PrefixOption & { username: string; password?: string; passwordStdin: boolean }, cmd: Command) => {
      const { cnrAuthFilePath, saveCnrToken, tokenKey } = await import('../cnr/client/tokens.js');
      const server = await serverAddress(serverArg, opts);
      const password = await loginPassword('cnr login', opts);
      const { out, client } = await openClient(cmd, server, false);
      if (opts.password !== undefined) out.warn('using --password on the command line is insecure; use --password-stdin');
      let token: string;
      try {
        token = await client.login(opts.username, password);
      } catch (err) {
        // Wrong credentials are a failure of the login, not bad usage of the command.
        if (err instanceof CnrError && (err.status === 401 || err.status === 403)) throw new CnabOciError(`login to ${server.host} failed: ${err.message}`);
        throw err;
      } finally {
        await client.close();
      }
      const file = cnrAuthFilePath();
      await saveCnrToken(server.host, token, file);
      out.note(`Login Succeeded (${tokenKey(server.host)}, token stored in ${file})`);
      out.result('Login Succeeded');
      out.data({ server: tokenKey(server.host), file });
    });

  clientCommand(cnr, 'logout')
    .description('forget the stored token of a CNR server')
    .argument('<server>', 'host[:port] or a URL')
    .action(async (serverArg: string, opts: PrefixOption, cmd: Command) => {
      const { cnrAuthFilePath, removeCnrToken, tokenKey } = await import('../cnr/client/tokens.js');
      const server = await serverAddress(serverArg, opts);
      const out = output(cmd);
      const file = cnrAuthFilePath();
      const removed = await removeCnrToken(server.host, file);
      out.note(removed ? `Removing the token for ${tokenKey(server.host)} from ${file}` : `Not logged in to ${tokenKey(server.host)}`);
      out.data({ server: tokenKey(server.host), file, removed });
    });

  clientCommand(cnr, 'push')
    .description('push a package: a directory (packed as the appr CLI does, .helmignore honoured for helm) or a .tar.gz file')
    .argument('<ref>', '[host[:port]/]namespace/name[@release]')
    .argument('<path>', 'package directory or .tar.gz file')
    .option('--release <release>', 'SemVer release (default: Chart.yaml\'s version for a helm chart)')
    .option('--media-type <type>', 'helm, kpm, docker-compose, ... (default: helm for a chart, else kpm)')
    .option('--force', 'overwrite an existing release of this media type', false)
    .option('--channel <name>', 'then add the release to this channel (making it current)')
    .option('--metadata <json|@file>', 'metadata object stored with the release')
    .action(async (refArg: string, path: string, opts: PrefixOption & { release?: string; mediaType?: string; force: boolean; channel?: string; metadata?: string }, cmd: Command) => {
      const [{ readLocalPackage }, { parseCnrReference }] = await Promise.all([import('../cnr/client/local-package.js'), import('../cnr/model/reference.js')]);
      const ref = parseCnrReference(refArg);
      if (ref.channel !== undefined) throw new InputError(`cnr push ${refArg}: a push names a release, not a channel; use --channel ${ref.channel}`);
      if (ref.digest !== undefined) throw new InputError(`cnr push ${refArg}: a push names a release, not a digest`);
      if (ref.release === 'default') throw new InputError(`cnr push ${refArg}: give the release to push (@1.2.3 or --release)`);
      if (ref.release !== undefined && opts.release !== undefined && ref.release !== opts.release) {
        throw new InputError(`cnr push: the reference says release ${ref.release}, --release says ${opts.release}`);
      }
      if (opts.channel !== undefined) parseChannelName(opts.channel);
      const metadata = opts.metadata === undefined ? undefined : await parseMetadata(opts.metadata);
      const pkg = await readLocalPackage(path, ref.pkg, { release: opts.release ?? ref.release, mediaType: opts.mediaType });
      const { out, client } = await openClient(cmd, await serverAddress(ref.server, opts));
      try {
        await loginHint(ref.server, async () => {
          await client.push(ref.pkg, { blob: pkg.blob, release: pkg.release, mediaType: pkg.mediaType, force: opts.force, ...(metadata ? { metadata } : {}) });
          if (opts.channel !== undefined) {
            await client.addToChannel(ref.pkg, opts.channel, pkg.release);
            out.note(`added ${ref.pkg.full}@${pkg.release} to channel ${opts.channel}`);
          }
        });
        const view = await client.show(ref.pkg, pkg.release, pkg.mediaType);
        out.result(`pushed ${ref.pkg.full}@${view.release} (${parseMediaType(view.mediaType)}, ${view.content.size} bytes, digest ${view.content.digest.slice(0, 12)})`);
        out.data(view);
      } finally {
        await client.close();
      }
    });

  clientCommand(cnr, 'pull')
    .description('fetch a release, verify it against its CNR digest and size, and unpack it (or save the .tar.gz)')
    .argument('<ref>', '[host[:port]/]namespace/name[@release|:channel|@sha256:hex] (default release: the highest)')
    .option('--media-type <type>', 'helm, kpm, ... (default: the release\'s only media type)')
    .option('--output <dir>', 'unpack here; must not exist or be empty (default ./NAME-RELEASE)')
    .option('--tarball <file>', 'write the .tar.gz here instead of unpacking')
    .action(async (refArg: string, opts: PrefixOption & { mediaType?: string; output?: string; tarball?: string }, cmd: Command) => {
      const [{ fetchVerified }, { parseCnrReference }, { writeFileAtomic }] = await Promise.all([
        import('../cnr/client/local-package.js'),
        import('../cnr/model/reference.js'),
        import('../util/files.js'),
      ]);
      const ref = parseCnrReference(refArg);
      if (opts.output !== undefined && opts.tarball !== undefined) throw new InputError('cnr pull: --output and --tarball are mutually exclusive');
      const mediaType = opts.mediaType === undefined ? '-' : parseMediaType(opts.mediaType);
      const { out, client } = await openClient(cmd, await serverAddress(ref.server, opts));
      let fetched: { bytes: Buffer; release: string; mediaType: string | undefined; digest: string; size: number };
      try {
        fetched = await fetchVerified(client, ref, mediaType);
      } finally {
        await client.close();
      }
      const label = `${ref.pkg.full}@${fetched.release}${fetched.mediaType ? ` (${fetched.mediaType})` : ''}`;
      const summary = `${ref.pkg.full}@${fetched.release} (${fetched.mediaType ?? 'blob'}, ${fetched.size} bytes, digest ${fetched.digest.slice(0, 12)})`;
      if (opts.tarball !== undefined) {
        await writeFileAtomic(opts.tarball, fetched.bytes);
        out.result(`pulled ${summary} -> ${opts.tarball}`);
        out.data({ package: ref.pkg.full, release: fetched.release, mediaType: fetched.mediaType ?? null, digest: fetched.digest, size: fetched.size, tarball: opts.tarball });
        return;
      }
      const dest = opts.output ?? `${ref.pkg.name}-${fetched.release}`;
      const { unpackPackage } = await import('../cnr/client/unpack.js');
      const unpacked = await unpackPackage(fetched.bytes, dest, { label });
      out.result(`pulled ${summary} -> ${dest}`);
      out.data({ package: ref.pkg.full, release: fetched.release, mediaType: fetched.mediaType ?? null, digest: fetched.digest, size: fetched.size, output: unpacked.dir, files: unpacked.files });
    });

  clientCommand(cnr, 'show')
    .description('show a package: every release and media type, and its channels; with @release or :channel, that release')
    .argument('<ref>', '[host[:port]/]namespace/name[@release|:channel|@sha256:hex]')
    .action(async (refArg: string, opts: PrefixOption, cmd: Command) => {
      const [{ parseCnrReference }, { sortDescending }] = await Promise.all([import('../cnr/model/reference.js'), import('../cnr/model/releases.js')]);
      const ref = parseCnrReference(refArg);
      const { out, client } = await openClient(cmd, await serverAddress(ref.server, opts));
      try {
        const all = await client.releases(ref.pkg);
        if (ref.release === undefined && ref.channel === undefined && ref.digest === undefined) {
          const channels = await client.channels(ref.pkg);
          out.data({ views: all, channels });
          printViews(out, all, sortDescending);
          if (channels.length > 0) {
            out.result('');
            out.result(table([['CHANNEL', 'CURRENT', 'RELEASES'], ...channels.map((c) => [c.name, c.current, c.releases.join(', ')])]));
          }
          return;
        }
        let views: RemoteView[];
        if (ref.digest !== undefined) {
          views = all.filter((v) => v.content.digest === ref.digest);
          if (views.length === 0) throw new CnrError(404, 'package-release-not-found', `no release of ${ref.pkg.full} has digest sha256:${ref.digest}`);
        } else {
          const release = ref.channel !== undefined ? (await client.channel(ref.pkg, ref.channel)).current : pickRelease(all, ref.release!, ref.pkg, sortDescending);
          const types = all.filter((v) => v.release === release).map((v) => parseMediaType(v.mediaType));
          if (types.length === 0) throw new CnrError(404, 'package-release-not-found', `release ${release} of ${ref.pkg.full} not found`);
          views = await Promise.all(types.map((t) => client.show(ref.pkg, release, t)));
        }
        out.data({ views });
        printViews(out, views, sortDescending);
        const channels = [...new Set(views.flatMap((v) => v.channels ?? []))];
        if (channels.length > 0) out.result(`channels: ${channels.join(', ')}`);
      } finally {
        await client.close();
      }
    });

  clientCommand(cnr, 'list')
    .description('list the packages of a CNR server')
    .argument('<server>', 'host[:port] or a URL such as https://quay.io/cnr')
    .option('--namespace <ns>', 'only this namespace')
    .option('--search <text>', 'only packages whose namespace/name contains this')
    .option('--media-type <type>', 'only packages whose default release has this media type')
    .action(async (serverArg: string, opts: PrefixOption & { namespace?: string; search?: string; mediaType?: string }, cmd: Command) => {
      const { out, client } = await openClient(cmd, await serverAddress(serverArg, opts));
      try {
        const entries = await client.list({
          ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
          ...(opts.search !== undefined ? { query: opts.search } : {}),
          ...(opts.mediaType !== undefined ? { mediaType: parseMediaType(opts.mediaType) } : {}),
        });
        out.data(entries);
        if (entries.length === 0) {
          out.note('no packages');
          return;
        }
        out.result(table([['NAME', 'DEFAULT', 'RELEASES', 'MEDIA TYPES'], ...entries.map((e) => [e.name, e.default, String(e.releases.length), e.manifests.join(', ')])]));
      } finally {
        await client.close();
      }
    });

  clientCommand(cnr, 'channel')
    .description('list a package\'s channels, or change one: --add CH RELEASE, --remove CH RELEASE, --delete CH')
    .argument('<ref>', '[host[:port]/]namespace/name[@release|:channel]')
    .argument('[release]', 'the release to add or remove (or give it in the reference: ns/name@1.0.0)')
    .option('--add <channel>', 'add RELEASE to this channel (created when missing) and make it current')
    .option('--remove <channel>', 'remove RELEASE from this channel')
    .option('--delete <channel>', 'delete this channel')
    .action(async (refArg: string, releaseArg: string | undefined, opts: PrefixOption & { add?: string; remove?: string; delete?: string }, cmd: Command) => {
      const [{ parseCnrReference }, { isRelease }] = await Promise.all([import('../cnr/model/reference.js'), import('../cnr/model/releases.js')]);
      const ref = parseCnrReference(refArg);
      if (ref.digest !== undefined) throw new InputError(`cnr channel ${refArg}: channels hold releases, not digests`);
      const actions = (['add', 'remove', 'delete'] as const).filter((a) => opts[a] !== undefined);
      if (actions.length > 1) throw new InputError(`cnr channel: give one of --add, --remove, --delete (got ${actions.map((a) => `--${a}`).join(' and ')})`);
      if (releaseArg !== undefined && ref.release !== undefined && releaseArg !== ref.release) throw new InputError(`cnr channel: the reference says release ${ref.release}, the argument says ${releaseArg}`);
      const release = releaseArg ?? ref.release;
      if (release !== undefined && !isRelease(release)) throw new InputError(`cnr channel: ${JSON.stringify(release)} is not a SemVer release`);
      const action = actions[0];
      if ((action === 'add' || action === 'remove') && release === undefined) throw new InputError(`cnr channel --${action} ${opts[action]}: which release? (cnr channel NS/NAME --${action} CHANNEL RELEASE)`);
      if ((action === undefined || action === 'delete') && release !== undefined) throw new InputError(`cnr channel: a release (${release}) is only given with --add or --remove`);
      const { out, client } = await openClient(cmd, await serverAddress(ref.server, opts));
      try {
        const pkg = ref.pkg;
        await loginHint(ref.server, async () => {
          if (action === 'add') {
            await client.addToChannel(pkg, opts.add!, release!);
            out.note(`added ${pkg.full}@${release} to channel ${opts.add}`);
          } else if (action === 'remove') {
            await client.removeFromChannel(pkg, opts.remove!, release!);
            out.note(`removed ${pkg.full}@${release} from channel ${opts.remove}`);
          } else if (action === 'delete') {
            await client.deleteChannel(pkg, opts.delete!);
            out.note(`deleted channel ${opts.delete} of ${pkg.full}`);
          }
        });
        const channels = action === undefined && ref.channel !== undefined ? [await client.channel(pkg, ref.channel)] : await client.channels(pkg);
        out.data(action === undefined ? channels : { package: pkg.full, action, channel: opts[action], ...(release ? { release } : {}), channels });
        if (channels.length === 0) out.note(`${pkg.full} has no channels`);
        else out.result(table([['CHANNEL', 'CURRENT', 'RELEASES'], ...channels.map((c) => [c.name, c.current, c.releases.join(', ')])]));
      } finally {
        await client.close();
      }
    });

}

/** A write refused for want of credentials says how to give them. */
async function loginHint(server: CnrServerAddress, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (err) {
    if (err instanceof CnrError && err.status === 401) throw new CnrError(401, err.code, `${err.message} (log in first: cnab-oci cnr login ${server.host} -u USER --password-stdin)`, err.details);
    throw err;
  }
}

function output(cmd: Command): Output {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  return new Output(g.json, g.debug);
}

/** The releases module's sort (semver), passed in by the actions that load it. */
type SortDescending = typeof import('../cnr/model/releases.js').sortDescending;

/** `default`: the highest release; an exact release as it is. */
function pickRelease(views: readonly RemoteView[], release: string, pkg: PackageName, sortDescending: SortDescending): string {
  if (release !== 'default') return release;
  const highest = sortDescending(new Set(views.map((v) => v.release)))[0];
  if (highest === undefined) throw new CnrError(404, 'package-not-found', `package ${pkg.full} has no releases`);
  return highest;
}

function printViews(out: Output, views: readonly RemoteView[], sortDescending: SortDescending): void {
  const order = sortDescending(new Set(views.map((v) => v.release)));
  const sorted = [...views].sort((a, b) => order.indexOf(a.release) - order.indexOf(b.release));
  out.result(table([
    ['RELEASE', 'MEDIA TYPE', 'CREATED', 'DIGEST', 'SIZE'],
    ...sorted.map((v) => [v.release, parseMediaType(v.mediaType), v.created_at, v.content.digest.slice(0, 12), formatBytes(v.content.size)]),
  ]));
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

async function parseMetadata(value: string): Promise<Record<string, unknown>> {
  const what = value.startsWith('@') ? value.slice(1) : '--metadata';
  let text = value;
  if (value.startsWith('@')) {
    const { readInputFile } = await import('../util/files.js');
    text = (await readInputFile(value.slice(1))).toString('utf8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${what}: not valid JSON (${(err as Error).message.split('\n')[0]})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InputError(`${what}: metadata must be a JSON object`);
  return parsed as Record<string, unknown>;
}

