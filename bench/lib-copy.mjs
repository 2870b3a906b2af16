// Stand-in for `cnab-oci copy SRC DST --json` through the compiled library, for checkouts whose
// CLI has no `copy` command yet. Prints the same kind of JSON document on stdout.
import { RegistryClient } from '../dist/registry/client.js';
import { openTransferLocation } from '../dist/ops/archive-location.js';
import { copyBundle } from '../dist/ops/copy.js';

const args = process.argv.slice(2);
const debug = args.includes('--debug');
const [src, dst] = args.filter((a) => !a.startsWith('--'));
// Knobs for experiments (bench/README-less: see the Performance section of the README).
const env = (name) => (process.env[name] ? Number(process.env[name]) : undefined);
const client = new RegistryClient({
  debug: debug ? (line) => process.stderr.write(`${line}\n`) : undefined,
  chunkThreshold: env('BENCH_CHUNK_THRESHOLD'),
  chunkSize: env('BENCH_CHUNK_SIZE'),
});
const from = await openTransferLocation(src, client, { create: false });
const to = await openTransferLocation(dst, client, { create: true });
try {
  const result = await copyBundle(from.location, to.location, { concurrency: env('BENCH_CONCURRENCY') });
  await to.finish();
  process.stdout.write(`${JSON.stringify({ digest: result.index.digest, stats: result.stats })}\n`);
} finally {
  await from.dispose();
  await to.dispose();
  await client.close();
}
