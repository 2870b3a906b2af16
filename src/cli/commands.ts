import { Option, type Command } from 'commander';
import type { Bundle } from '../cnab/index.js';
import type { OciLayout } from '../content/layout.js';
import { InputError } from '../oci/errors.js';
import type { RegistryClient } from '../registry/client.js';
import type { CredentialStore } from '../registry/credentials.js';
import type { AttachmentInfo } from '../ops/attachments.js';
import type { TransportOptions } from '../registry/transport.js';
import { Output } from './output.js';
import { redactSecrets } from './redact.js';
import { interrupted } from './interrupt.js';

// Registering the commands loads only commander and the small modules above: what a command
// needs (the registry client, undici, zod, the CNAB and OCI code) is imported by its action, so
// `--help`, `--version` and every other command do not pay for it at start-up.

export interface GlobalOptions {
  insecureRegistry: string[];
  insecureRegistries: string[];
  caFile: string[];
  certsDir: string;
  json: boolean;
  debug: boolean;
  retries: number;
}

/** Output, and the transport settings of the global flags: TLS, insecure hosts, retries, --debug. */
async function flagContext(cmd: Command): Promise<{ out: Output; flags: TransportOptions }> {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  const out = new Output(g.json, g.debug);
  const { readInputFile } = await import('../util/files.js');
  const ca = await Promise.all(g.caFile.map((f) => readInputFile(f).then((b) => b.toString())));
  const flags: TransportOptions = {
    insecureRegistries: [...g.insecureRegistry, ...g.insecureRegistries],
    ca,
    certsDir: g.certsDir,
    debug: g.debug ? (line: string) => out.debug(redactSecrets(line)) : undefined,
    attempts: g.retries + 1,
    signal: interrupted.signal,
  };
  return { out, flags };
}

/** Output, and the flags' transport settings over Docker's defaults: for CNR servers. */
export async function transportContext(cmd: Command): Promise<{ out: Output; transport: TransportOptions }> {
  const [{ out, flags }, { dockerTransportOptions }] = await Promise.all([flagContext(cmd), import('../registry/docker-defaults.js')]);
  return { out, transport: dockerTransportOptions(flags) };
}

/** Output and a registry client as Docker users expect it, with the flags; `credentials` replaces Docker's (login). */
export async function context(cmd: Command, credentials?: CredentialStore): Promise<{ out: Output; client: RegistryClient }> {
  const [{ out, flags }, { dockerRegistryClient }] = await Promise.all([flagContext(cmd), import('../registry/docker-defaults.js')]);
  return { out, client: dockerRegistryClient({ ...flags, credentials }) };
}

async function loadBundle(path: string, out: Output, strict: boolean): Promise<Bundle> {
  const [{ parseBundle }, { readInputFile }] = await Promise.all([import('../cnab/index.js'), import('../util/files.js')]);
  const { bundle, unknownFields } = parseBundle(await readInputFile(path), path);
  if (unknownFields.length > 0) {
    const msg = `${path}: unknown top-level field(s) ${unknownFields.join(', ')} are not part of CNAB and will be dropped (as cnab-go does)`;
    if (strict) throw new InputError(`${msg}; remove them or run without --strict`);
    out.warn(msg);
  }
  return bundle;
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`--concurrency: expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerCommands(program: Command): void {
  program
    .command('push')
    .description('fix up a bundle\'s images into the target repository and push the bundle as an OCI index')
    .argument('<bundle>', 'bundle.json file')
    .requiredOption('-t, --target <ref>', 'registry/repo:tag, oci:DIR[:TAG] or oci-archive:FILE[:TAG]')
    .option('--auto-update-bundle', 'take contentDigest/size/mediaType from the registry when the bundle differs', false)
    .option('--bundle <file>', 'write the fixed-up bundle here')
    .option('--relocation-map <file>', 'write the relocation map here')
    .addOption(new Option('--images-from <oci:DIR>', 'look for the bundle\'s images in this OCI layout first (repeatable)').argParser(collect).default([]))
    .option('--strict', 'refuse bundles with fields that are not part of CNAB', false)
    .addOption(new Option('--concurrency <n>', 'blob transfers at once').argParser(positiveInt).default(8))
    .option('--no-referrers', 'leave the images\' signatures, SBOMs and attestations behind')
    .action(async (bundlePath: string, opts, cmd: Command) => {
      const [{ serializeRelocationMap }, { createImageResolver, withLocation }, { pushBundle }, { writeFilesAtomic }] = await Promise.all([
        import('../cnab/index.js'),
        import('../ops/locations.js'),
        import('../ops/push.js'),
        import('../util/files.js'),
      ]);
      const { out, client } = await context(cmd);
      const bundle = await loadBundle(bundlePath, out, opts.strict);
      await withLocation(opts.target, client, { create: true }, async (destination) => {
        const layouts = await Promise.all((opts.imagesFrom as string[]).map(openImageLayout));
        const result = await pushBundle(bundle, {
          destination,
          resolver: createImageResolver(client, layouts),
          autoUpdateBundle: opts.autoUpdateBundle,
          concurrency: opts.concurrency,
          attempts: client.transport.attempts,
          referrers: opts.referrers,
          signal: interrupted.signal,
          onEvent: out.json ? undefined : out.progress(),
          onFallback: (msg) => out.warn(msg),
        });
        for (const c of result.changes) {
          out.note(`${c.path} (${c.image}): ${c.field} ${c.from === undefined ? 'filled in' : `updated from ${JSON.stringify(c.from)}`} as ${JSON.stringify(c.to)}`);
        }
        await writeFilesAtomic([
          ...(opts.bundle ? [{ path: opts.bundle as string, data: result.bundleBytes }] : []),
          ...(opts.relocationMap ? [{ path: opts.relocationMap as string, data: serializeRelocationMap(result.relocationMap) }] : []),
        ]);
        out.note(`pushed ${destination.display} (${result.stats.objectsCopied} copied, ${result.stats.mounts} mounted, ${result.stats.objectsSkipped} already there)`);
        out.result(result.index.digest);
        out.data({
          target: destination.display,
          digest: result.index.digest,
          mediaType: result.index.mediaType,
          size: result.index.size,
          configMediaType: result.configMediaType,
          relocationMap: result.relocationMap,
          changes: result.changes,
          stats: result.stats,
        });
      });
    });

  program
    .command('pull')
    .description('fetch a bundle and its relocation map, verifying every byte')
    .argument('<ref>', 'registry/repo:tag, registry/repo@digest, oci:DIR[:TAG] or oci-archive:FILE[:TAG]')
    .option('--bundle <file>', 'where to write the bundle', 'pulled.json')
    .option('--relocation-map <file>', 'where to write the relocation map', 'relocation-map.json')
    .action(async (ref: string, opts, cmd: Command) => {
      const [{ serializeRelocationMap }, { withLocation }, { pullBundle }, { writeFilesAtomic }] = await Promise.all([
        import('../cnab/index.js'),
        import('../ops/locations.js'),
        import('../ops/pull.js'),
        import('../util/files.js'),
      ]);
      const { out, client } = await context(cmd);
      await withLocation(ref, client, { create: false }, async (source) => {
        const pulled = await pullBundle(source);
        for (const f of pulled.unknownFields) out.warn(`${ref}: bundle has unknown field ${f}`);
        await writeFilesAtomic([
          { path: opts.bundle, data: pulled.bundleBytes },
          { path: opts.relocationMap, data: serializeRelocationMap(pulled.relocationMap) },
        ]);
        out.note(`pulled ${pulled.bundle.name}@${pulled.bundle.version} from ${source.display} -> ${opts.bundle}, ${opts.relocationMap}`);
        out.result(pulled.index.digest);
        out.data({ source: source.display, digest: pulled.index.digest, bundle: opts.bundle, relocationMap: pulled.relocationMap });
      });
    });

  program
    .command('convert')
    .description('offline: write the exact config blob, config manifest and index push would send')
    .argument('<bundle>', 'bundle.json file')
    .requiredOption('-t, --target <ref>', 'the registry/repo:tag the bundle would be pushed to')
    .option('--relocation-map <file>', 'relocation map (original image -> repo@digest in the target repository)')
    .requiredOption('-o, --output <dir>', 'directory for bundle.json, config-manifest.json and index.json')
    .option('--strict', 'refuse bundles with fields that are not part of CNAB', false)
    .action(async (bundlePath: string, opts, cmd: Command) => {
      const [{ parseRelocationMap }, { parseReference }, { convertOffline, writeConverted }, { readInputFile }] = await Promise.all([
        import('../cnab/index.js'),
        import('../oci/reference.js'),
        import('../ops/convert.js'),
        import('../util/files.js'),
      ]);
      const { out } = await context(cmd);
      const bundle = await loadBundle(bundlePath, out, opts.strict);
      const target = parseReference(opts.target);
      const map = opts.relocationMap ? parseRelocationMap(await readInputFile(opts.relocationMap), opts.relocationMap) : {};
      const converted = convertOffline(bundle, target, map);
      await writeConverted(converted, opts.output);
      out.result(converted.index.descriptor.digest);
      out.data({
        index: converted.index.descriptor,
        configManifest: converted.configManifest.descriptor,
        config: converted.config.descriptor,
        output: opts.output,
      });
    });

  program
    .command('inspect')
    .description('show what a bundle index holds: bundle name and version, images and digests')
    .argument('<ref>', 'registry/repo:tag, registry/repo@digest, oci:DIR[:TAG] or oci-archive:FILE[:TAG]')
    .option('--referrers', 'also list what is attached to the bundle and each image: signatures, SBOMs, attestations', false)
    .action(async (ref: string, opts, cmd: Command) => {
      const [{ withLocation }, { pullBundle }, { bundleAttachments }] = await Promise.all([import('../ops/locations.js'), import('../ops/pull.js'), import('../ops/attachments.js')]);
      const { out, client } = await context(cmd);
      await withLocation(ref, client, { create: false }, async (source) => {
        const pulled = await pullBundle(source);
        const manifests = pulled.indexDocument.manifests ?? [];
        const attachments = opts.referrers ? await bundleAttachments(source.target, pulled) : undefined;
        out.data({
          reference: source.display,
          digest: pulled.index.digest,
          mediaType: pulled.index.mediaType,
          bundle: { name: pulled.bundle.name, version: pulled.bundle.version, schemaVersion: pulled.bundle.schemaVersion },
          config: pulled.config,
          manifests,
          relocationMap: pulled.relocationMap,
          ...(attachments && { referrers: attachments }),
        });
        out.result(`${source.display}  ${pulled.index.digest}`);
        out.result(`bundle   ${pulled.bundle.name} ${pulled.bundle.version} (schema ${pulled.bundle.schemaVersion})`);
        out.result(`config   ${pulled.config.mediaType} ${pulled.config.digest}`);
        for (const m of manifests) {
          const type = m.annotations?.['io.cnab.manifest.type'] ?? '?';
          const name = m.annotations?.['io.cnab.component.name'];
          out.result(`${type.padEnd(10)} ${m.digest}  ${m.mediaType}${name ? `  ${name}` : ''}`);
        }
        for (const [image, relocated] of Object.entries(pulled.relocationMap)) out.result(`image    ${image} -> ${relocated}`);
        for (const a of attachments ?? []) {
          out.result(`attached to ${a.what} ${a.digest}:${a.attached.length === 0 ? ' nothing' : ''}`);
          const print = (list: AttachmentInfo[], depth: number): void => {
            for (const item of list) {
              const details = [item.tag, item.signer && `signer ${item.signer}`].filter(Boolean).join(', ');
              out.result(`${'  '.repeat(depth)}${item.type}  ${item.digest}${details ? `  (${details})` : ''}`);
              print(item.attached, depth + 1);
            }
          };
          print(a.attached, 1);
        }
      });
    });
}

async function openImageLayout(spec: string): Promise<OciLayout> {
  const [{ OciLayout }, { parseLocation }] = await Promise.all([import('../content/layout.js'), import('../content/location.js')]);
  const loc = parseLocation(spec.startsWith('oci:') ? spec : `oci:${spec}`);
  if (loc.kind !== 'layout') throw new InputError(`--images-from ${spec}: expected oci:DIR`);
  return OciLayout.open(loc.dir, { create: false });
}
