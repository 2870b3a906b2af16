import { dirname } from 'node:path';
import { Option, type Command } from 'commander';
import { InputError } from '../oci/errors.js';
import type { PlatformSpec } from '../oci/platform.js';
import type { CopyStats } from '../transfer/copy.js';
import { context, positiveInt } from './commands.js';
import { interrupted } from './interrupt.js';
import { formatBytes, type Output } from './output.js';
import { parsePlatform } from '../oci/platform.js';
import type { Progress } from './progress.js';

/** `copy`, `archive` and `import`: move a whole bundle (index and every image graph) between places. */
export function registerRelocateCommands(program: Command): void {
  program
    .command('copy')
    .description('relocate a bundle and all its images to another registry, repository, oci:DIR or oci-archive:FILE')
    .argument('<src>', 'registry/repo:tag, registry/repo@digest, oci:DIR[:TAG] or oci-archive:FILE[:TAG]')
    .argument('<dst>', 'same forms; without a tag the source\'s tag is kept')
    .addOption(new Option('--platform <os/arch[/variant]>', 'keep only this platform of multi-arch images (repeatable; the bundle gets a new digest)').argParser(collectPlatform).default([]))
    .option('--preserve-tags', 'also tag each image in the destination repository with its original tag', false)
    .option('--relocation-map <file>', 'write the relocation map (original image -> new location) here')
    .addOption(new Option('--concurrency <n>', 'transfers at once').argParser(positiveInt).default(8))
    .option('--no-referrers', 'leave signatures, SBOMs and attestations (OCI referrers, cosign tags) behind')
    .action(async (srcArg: string, dstArg: string, opts, cmd: Command) => {
      const [{ serializeRelocationMap }, { copyBundle }, { writeFileAtomic }, { withLocation }] = await Promise.all([import('../cnab/index.js'), import('../ops/copy.js'), import('../util/files.js'), import('../ops/locations.js')]);
      const { out, client } = await context(cmd);
      if (opts.relocationMap) await checkWritableDir(opts.relocationMap);
      await withLocation(srcArg, client, { create: false }, async (src) => {
        await withLocation(dstArg, client, { create: true, defaultTag: false }, async (dst) => {
          const progress = await startProgress(out);
          const result = await copyBundle(src, dst, {
            platforms: opts.platform as PlatformSpec[],
            preserveTags: opts.preserveTags,
            concurrency: opts.concurrency,
            attempts: client.transport.attempts,
            referrers: opts.referrers,
            signal: interrupted.signal,
            onEvent: progress?.onEvent.bind(progress),
          }).finally(() => progress?.finish());
          await dst.finish();
          if (opts.relocationMap) await writeFileAtomic(opts.relocationMap, serializeRelocationMap(result.relocationMap));
          const destination = `${dst.relocationName}:${result.tag}`;
          for (const f of result.filtered) out.note(`${f.path} (${f.image}): kept ${f.platforms.join(', ')}: ${f.from.digest} -> ${f.to.digest}`);
          for (const t of result.tags) out.note(`tagged ${dst.relocationName}:${t}`);
          for (const d of result.detached) {
            out.warn(`${d.what}: the new index ${d.to.digest} has no signature of its own; the ${d.count} signature(s) or attachment(s) of ${d.from.digest} do not apply to it`);
          }
          out.note(`copied ${src.display} -> ${destination}: ${summary(result.stats, result.durationMs)}`);
          out.result(result.index.digest);
          out.data({
            source: src.display,
            destination,
            digest: result.index.digest,
            mediaType: result.index.mediaType,
            size: result.index.size,
            sourceDigest: result.source.index.digest,
            relocationMap: result.relocationMap,
            filtered: result.filtered.map((f) => ({ path: f.path, image: f.image, from: f.from.digest, to: f.to.digest, platforms: f.platforms })),
            tags: result.tags,
            detached: result.detached.map((d) => ({ what: d.what, from: d.from.digest, to: d.to.digest, count: d.count })),
            ...jsonStats(result.stats, result.durationMs),
          });
        });
      });
    });

  program
    .command('archive')
    .description('write a bundle and all its images to a CNAB thick bundle (gzipped tar, Porter\'s layout)')
    .argument('<ref>', 'registry/repo:tag, registry/repo@digest, oci:DIR[:TAG] or oci-archive:FILE[:TAG]')
    .argument('<file>', 'the .tgz to write (atomically)')
    .addOption(new Option('--concurrency <n>', 'transfers at once').argParser(positiveInt).default(8))
    .option('--no-referrers', 'leave signatures, SBOMs and attestations (OCI referrers, cosign tags) behind')
    .action(async (ref: string, file: string, opts, cmd: Command) => {
      const [{ stat }, { archiveBundle }, { withLocation }] = await Promise.all([import('node:fs/promises'), import('../ops/archive.js'), import('../ops/locations.js')]);
      const { out, client } = await context(cmd);
      await checkWritableDir(file);
      await withLocation(ref, client, { create: false }, async (src) => {
        const progress = await startProgress(out);
        const result = await archiveBundle(src, file, {
          concurrency: opts.concurrency,
          attempts: client.transport.attempts,
          referrers: opts.referrers,
          signal: interrupted.signal,
          onEvent: progress?.onEvent.bind(progress),
        }).finally(() => progress?.finish());
        const size = (await stat(file)).size;
        out.note(`archived ${src.display} -> ${file} (${result.images.length} images, ${formatBytes(size)}): ${summary(result.stats, result.durationMs)}`);
        out.result(result.index.digest);
        out.data({
          source: src.display,
          file,
          fileSize: size,
          digest: result.index.digest,
          bundle: { name: result.bundle.name, version: result.bundle.version },
          relocationMap: result.relocationMap,
          images: result.images.map((i) => ({ image: i.image, digest: i.descriptor.digest, mediaType: i.descriptor.mediaType })),
          ...jsonStats(result.stats, result.durationMs),
        });
      });
    });

  program
    .command('import')
    .description('publish a CNAB thick bundle (ours or Porter\'s) into a registry or OCI layout, after verifying every blob')
    .argument('<file>', 'thick bundle .tgz (or .tar)')
    .requiredOption('-t, --target <ref>', 'registry/repo:tag, oci:DIR[:TAG] or oci-archive:FILE[:TAG]')
    .option('--relocation-map <file>', 'write the relocation map (original image -> new location) here')
    .addOption(new Option('--concurrency <n>', 'transfers at once').argParser(positiveInt).default(8))
    .option('--no-referrers', 'leave signatures, SBOMs and attestations (OCI referrers, cosign tags) behind')
    .action(async (file: string, opts, cmd: Command) => {
      const [{ serializeRelocationMap }, { importBundle }, { writeFileAtomic }, { withLocation }] = await Promise.all([import('../cnab/index.js'), import('../ops/archive.js'), import('../util/files.js'), import('../ops/locations.js')]);
      const { out, client } = await context(cmd);
      if (opts.relocationMap) await checkWritableDir(opts.relocationMap);
      await withLocation(opts.target, client, { create: true }, async (dst) => {
        const progress = await startProgress(out);
        const result = await importBundle(file, dst, {
          concurrency: opts.concurrency,
          attempts: client.transport.attempts,
          referrers: opts.referrers,
          signal: interrupted.signal,
          onEvent: progress?.onEvent.bind(progress),
          onFallback: (msg) => out.warn(msg),
          onWarning: (msg) => out.warn(msg),
        }).finally(() => progress?.finish());
        await dst.finish();
        if (opts.relocationMap) await writeFileAtomic(opts.relocationMap, serializeRelocationMap(result.relocationMap));
        for (const c of result.changes) out.note(`${c.path} (${c.image}): ${c.field} ${c.from === undefined ? 'filled in' : `updated from ${JSON.stringify(c.from)}`} as ${JSON.stringify(c.to)}`);
        out.note(`imported ${file} -> ${dst.display} (${result.verifiedBlobs} blobs verified): ${summary(result.stats, result.durationMs)}`);
        out.result(result.index.digest);
        out.data({
          file,
          target: dst.display,
          digest: result.index.digest,
          mediaType: result.index.mediaType,
          size: result.index.size,
          verifiedBlobs: result.verifiedBlobs,
          relocationMap: result.relocationMap,
          changes: result.changes,
          ...jsonStats(result.stats, result.durationMs),
        });
      });
    });
}



async function startProgress(out: Output): Promise<Progress | undefined> {
  return out.json ? undefined : (await import('./progress.js')).createProgress(process.stderr);
}

function summary(stats: CopyStats, ms: number): string {
  const attached = stats.attached > 0 ? `, ${stats.attached} attached (signatures, SBOMs...)` : '';
  return `${formatBytes(stats.bytesCopied)} moved (${stats.objectsCopied} objects), ${formatBytes(stats.bytesSkipped)} skipped (${stats.objectsSkipped} already there, ${stats.mounts} mounted)${attached} in ${(ms / 1000).toFixed(1)} s`;
}

function jsonStats(stats: CopyStats, ms: number) {
  return {
    bytesMoved: stats.bytesCopied,
    bytesSkipped: stats.bytesSkipped,
    mounts: stats.mounts,
    durationMs: Math.round(ms),
    stats,
  };
}

/** Fail before any transfer when an output file cannot be written where it was asked. */
async function checkWritableDir(file: string): Promise<void> {
  const { stat } = await import('node:fs/promises');
  const dir = dirname(file);
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new InputError(`${file}: directory ${dir} does not exist`);
}

function collectPlatform(value: string, previous: PlatformSpec[]): PlatformSpec[] {
  return [...previous, parsePlatform(value)];
}

