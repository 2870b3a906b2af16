import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CnabOciError, InputError } from '../../oci/errors.js';
import { readInputFile } from '../../util/files.js';
import { parseMediaType, type PackageName } from '../model/names.js';
import { inspectPackage } from '../model/package.js';
import type { CnrReference } from '../model/reference.js';
import { isRelease } from '../model/releases.js';
import type { CnrClient } from './client.js';

/** What the client pushes and pulls: a package on disk, and a package fetched and verified. */

export interface LocalPackage {
  blob: Buffer;
  release: string;
  mediaType: string;
}

/** A directory packed, or a .tar.gz checked; the release and media type as given or found (Chart.yaml, the chart in the archive). */
export async function readLocalPackage(path: string, pkg: PackageName, given: { release: string | undefined; mediaType: string | undefined }): Promise<LocalPackage> {
  const stats = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new InputError(`${path}: no such file or directory`);
    if (err.code === 'EACCES') throw new InputError(`${path}: permission denied`);
    throw new InputError(`${path}: cannot read (${err.code ?? String(err)})`);
  });
  let mediaType = given.mediaType === undefined ? undefined : parseMediaType(given.mediaType);
  let release = given.release;
  let blob: Buffer;
  if (stats.isDirectory()) {
    const { packPackage, releaseFromChart } = await import('./pack.js');
    const isChart = (await stat(join(path, 'Chart.yaml')).catch(() => undefined))?.isFile() === true;
    mediaType ??= isChart ? 'helm' : 'kpm';
    if (release === undefined) {
      if (mediaType !== 'helm') throw new InputError(`${path}: give the release with --release (only a helm chart's comes from its Chart.yaml)`);
      release = await releaseFromChart(path);
    }
    checkRelease(release);
    blob = await packPackage(path, { packageName: pkg.name, mediaType });
  } else if (stats.isFile()) {
    blob = await readInputFile(path);
    let content;
    try {
      content = await inspectPackage(blob);
    } catch (err) {
      throw new InputError(`${path}: not a package: ${(err as Error).message.split('\n')[0]}`);
    }
    mediaType ??= content.chart ? 'helm' : 'kpm';
    if (release === undefined) {
      const version = mediaType === 'helm' ? content.chart?.version : undefined;
      if (version === undefined) throw new InputError(`${path}: give the release with --release (only a helm chart's comes from its Chart.yaml)`);
      if (!isRelease(version)) throw new InputError(`${path}: the chart's version ${JSON.stringify(version)} is not a SemVer 2.0 release; give one with --release`);
      release = version;
    }
    checkRelease(release);
  } else {
    throw new InputError(`${path}: not a directory or a regular file`);
  }
  return { blob, release, mediaType };
}

function checkRelease(release: string): void {
  if (!isRelease(release)) throw new InputError(`release ${JSON.stringify(release)} is not a SemVer 2.0 release such as 1.2.3 or 1.2.3-beta.1`);
}

/**
 * The bytes of the release (or blob) a reference names, checked against what the server says of
 * it: the view's CNR digest and size (a blob: the digest it is named by). Bytes that do not check
 * are a failure (exit status 1), never written.
 */
export async function fetchVerified(client: CnrClient, ref: CnrReference, mediaType: string): Promise<{ bytes: Buffer; release: string; mediaType: string | undefined; digest: string; size: number }> {
  const pkg = ref.pkg;
  if (ref.digest !== undefined) {
    const bytes = await client.blob(pkg, ref.digest);
    const label = `${pkg.full}@sha256:${ref.digest.slice(0, 12)}`;
    let digest: string;
    try {
      digest = (await inspectPackage(bytes)).digest;
    } catch (err) {
      throw new CnabOciError(`${label}: the server sent something that is not a package (${(err as Error).message.split('\n')[0]}); nothing written`);
    }
    if (digest !== ref.digest) throw new CnabOciError(`digest mismatch for ${label}: expected ${ref.digest}, got ${digest}; nothing written`);
    return { bytes, release: `sha256-${ref.digest.slice(0, 12)}`, mediaType: undefined, digest, size: bytes.length };
  }
  const query = ref.channel !== undefined ? (await client.channel(pkg, ref.channel)).current : (ref.release ?? 'default');
  const view = await client.show(pkg, query, mediaType);
  const type = parseMediaType(view.mediaType);
  const label = `${pkg.full}@${view.release} (${type})`;
  const bytes = await client.pull(pkg, view.release, type);
  try {
    const { verifyPackage } = await import('./unpack.js');
    await verifyPackage(bytes, { digest: view.content.digest, size: view.content.size }, { label });
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!;
    throw new CnabOciError(`${message.includes(label) ? message : `${label}: ${message}`}; nothing written`);
  }
  return { bytes, release: view.release, mediaType: type, digest: view.content.digest, size: view.content.size };
}

