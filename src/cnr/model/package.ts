import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, gunzip } from 'node:zlib';
import * as tarStream from 'tar-stream';
import { parse as parseYaml } from 'yaml';
import { safeEntryPath } from '../../content/tar.js';
import { firstLine } from '../../oci/errors.js';
import { invalidParameters } from './errors.js';

/** What a package blob (a .tar.gz) holds, read without touching a disk. */
export interface PackageContent {
  /** The CNR digest: bare hex SHA-256 of the gunzipped tar. */
  digest: string;
  /** Bytes of the gzip stream (the API's `size`). */
  size: number;
  unpackedSize: number;
  /** Set when the archive is a Helm chart: one top directory holding `Chart.yaml`. */
  chart?: ChartMetadata;
}

/** Chart.yaml, as Helm marshals it into its OCI config (`application/vnd.cncf.helm.config.v1+json`). */
export type ChartMetadata = Record<string, unknown> & { name: string; version: string };

export interface InspectOptions {
  /** Refuse archives that unpack to more than this (a gzip bomb); default 512 MiB. */
  maxUnpackedSize?: number;
}

export const DEFAULT_MAX_UNPACKED = 512 * 1024 * 1024;
const MAX_CHART_YAML = 1024 * 1024;

/**
 * Packages up to this size (compressed) are gunzipped in one call rather than through streams:
 * a stream pipeline costs more than the work for a small package (bench/: 1.5 ms against 0.3 ms
 * for 10 KiB). What one call may unpack is bounded too; past the bound, streams take over.
 */
const MAX_BUFFERED_GZIP = 4 * 1024 * 1024;
const MAX_BUFFERED_UNPACKED = 64 * 1024 * 1024;
const gunzipAsync = promisify(gunzip);

/**
 * Check that `blob` is a gzipped tar whose every entry stays inside the archive (no absolute
 * paths, no `..`, no link pointing out), and compute its CNR digest. Anything else is a 422
 * naming the problem: the reference answers these with a 500.
 */
export async function inspectPackage(blob: Uint8Array, options: InspectOptions = {}): Promise<PackageContent> {
  const limit = options.maxUnpackedSize ?? DEFAULT_MAX_UNPACKED;
  if (blob.length < 2 || blob[0] !== 0x1f || blob[1] !== 0x8b) throw invalidParameters('blob is not gzip data (a .tar.gz package is expected)');
  const tar = blob.length <= MAX_BUFFERED_GZIP ? await gunzipBounded(blob, Math.min(limit, MAX_BUFFERED_UNPACKED)) : undefined;
  const walk = new EntryWalk();
  const hash = createHash('sha256');
  let unpackedSize = 0;
  try {
    if (tar) {
      hash.update(tar);
      unpackedSize = tar.length;
      const extract = tarStream.extract();
      extract.end(tar);
      await walk.read(extract);
    } else {
      const extract = tarStream.extract();
      const counting = new Transform({
        transform(chunk: Buffer, _enc, done) {
          unpackedSize += chunk.length;
          if (unpackedSize > limit) return done(invalidParameters(`package unpacks to more than ${limit} bytes (--max-unpacked)`));
          hash.update(chunk);
          done(null, chunk);
        },
      });
      await Promise.all([pipeline(Readable.from([blob]), createGunzip(), counting, extract), walk.read(extract)]);
    }
  } catch (err) {
    if ((err as { status?: number }).status === 422) throw err;
    throw invalidParameters(`blob is not a gzipped tar archive (${firstLine(err)})`);
  }
  if (walk.entries === 0) throw invalidParameters('package archive is empty');
  const content: PackageContent = { digest: hash.digest('hex'), size: blob.length, unpackedSize };
  const chart = walk.tops.size === 1 && walk.chartYaml ? chartMetadata(walk.chartYaml) : undefined;
  if (chart) content.chart = chart;
  return content;
}

/** The gunzipped bytes, or undefined when they would exceed `bound` (then the caller streams). */
async function gunzipBounded(blob: Uint8Array, bound: number): Promise<Buffer | undefined> {
  try {
    return await gunzipAsync(blob, { maxOutputLength: bound });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) return undefined;
    throw invalidParameters(`blob is not gzip data (${firstLine(err)})`);
  }
}

/** The checks every entry of a package passes, and what the walk learns (top directories, Chart.yaml). */
class EntryWalk {
  entries = 0;
  readonly tops = new Set<string>();
  chartYaml: Buffer | undefined;

  async read(extract: tarStream.Extract): Promise<void> {
    try {
      for await (const entry of extract) {
        this.entries++;
        const header = entry.header;
        const path = checkedPath(header.name);
        checkLink(path, header);
        if (path !== '') this.tops.add(path.split('/')[0]!);
        const isChartYaml = header.type === 'file' && /^[^/]+\/Chart\.yaml$/.test(path);
        if (isChartYaml && (header.size ?? 0) <= MAX_CHART_YAML) this.chartYaml = await readEntry(entry as unknown as AsyncIterable<Buffer>);
        else entry.resume();
      }
    } catch (err) {
      extract.destroy();
      throw err;
    }
  }
}

function checkedPath(name: string): string {
  try {
    return safeEntryPath(name, 'package');
  } catch (err) {
    throw invalidParameters((err as Error).message);
  }
}

/** Links may point only inside the archive: a hard link names an entry, a symlink resolves from its own directory. */
function checkLink(path: string, header: tarStream.Header): void {
  if (header.type !== 'symlink' && header.type !== 'link') return;
  const target = header.linkname ?? '';
  const resolved = header.type === 'link' ? posix.normalize(target) : posix.normalize(posix.join(posix.dirname(path), target));
  if (target.startsWith('/') || resolved === '..' || resolved.startsWith('../')) {
    throw invalidParameters(`package: refusing entry ${JSON.stringify(header.name)}: ${header.type} to ${JSON.stringify(target)} points outside the archive`);
  }
}

async function readEntry(entry: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of entry) parts.push(part);
  return Buffer.concat(parts);
}

/**
 * Chart.yaml as Helm's config: the fields of Helm's chart metadata, in its order, empty ones
 * left out (Go's omitempty). Undefined when it does not parse or lacks a name or version: such
 * an archive is not a chart Helm could load.
 */
const CHART_FIELDS = ['name', 'home', 'sources', 'version', 'description', 'keywords', 'maintainers', 'icon', 'apiVersion', 'condition', 'tags', 'appVersion', 'deprecated', 'annotations', 'kubeVersion', 'dependencies', 'type'];

export function chartMetadata(yamlText: Buffer | string): ChartMetadata | undefined {
  const text = yamlText.toString();
  let doc: unknown;
  let literal: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
    // Helm reads versions into strings: `version: 1.0` is "1.0", which the core schema would make 1.
    literal = parseYaml(text, { maxAliasCount: 100, schema: 'failsafe' });
  } catch {
    return undefined;
  }
  if (!isObject(doc) || !isObject(literal)) return undefined;
  const out: Record<string, unknown> = {};
  for (const field of CHART_FIELDS) {
    const value = field === 'version' || field === 'appVersion' ? literal[field] : doc[field];
    if (value === undefined || value === null || value === '' || value === false || (Array.isArray(value) && value.length === 0)) continue;
    out[field] = value;
  }
  if (typeof out.name !== 'string' || typeof out.version !== 'string') return undefined;
  return out as ChartMetadata;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
