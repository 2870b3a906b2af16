// `node bench/startup.mjs [--runs N] [--quick]` (or `npm run bench -- --only startup`)
//
// Start-up of the CLI as a whole process: `node dist/bin/cnab-oci.js --version`, `--help` and
// `cnr --help`, beside `node -e 0` (Node's own start, the floor no command can go below),
// measured in the same run. Each process is timed from before its spawn to after its exit with
// process.hrtime; the commands take turns (floor, --version, --help, cnr --help, floor, ...) so
// that a machine getting busier or quieter moves them all alike. One warm-up round is not counted.
// Prints median, min and max of each, and the median over the floor.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(root, 'dist/bin/cnab-oci.js');
const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const runs = Math.max(10, Number(runsAt >= 0 ? argv[runsAt + 1] : argv.includes('--quick') ? 10 : 30));
const TARGET_MS = 120;

const commands = [
  { name: 'node -e 0 (floor)', args: ['-e', '0'] },
  { name: 'cnab-oci --version', args: [CLI, '--version'], target: TARGET_MS },
  { name: 'cnab-oci --help', args: [CLI, '--help'], target: TARGET_MS },
  { name: 'cnab-oci cnr --help', args: [CLI, 'cnr', '--help'] },
];

/** One run: wall milliseconds from spawn to exit; a failed command stops the bench. */
function time(args) {
  const started = process.hrtime.bigint();
  const res = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`node ${args.join(' ')} exited ${res.status}: ${res.stderr.slice(-2000)}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const fmt = (ms) => `${ms.toFixed(0)} ms`;

if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm run bench does)');
process.stderr.write(`bench: start-up, ${runs} runs of each command in turn (after one warm-up round)\n`);
for (const c of commands) time(c.args);
const times = commands.map(() => []);
for (let i = 0; i < runs; i++) commands.forEach((c, j) => times[j].push(time(c.args)));

const floor = median(times[0]);
const head = ['command', 'median', 'min-max', 'over the floor', 'target', 'met'];
const body = commands.map((c, j) => {
  const m = median(times[j]);
  return [
    c.name,
    fmt(m),
    `${Math.min(...times[j]).toFixed(0)}-${fmt(Math.max(...times[j]))}`,
    j === 0 ? '' : `${m >= floor ? '+' : '-'}${fmt(Math.abs(m - floor))}`,
    c.target ? `<= ${c.target} ms` : '',
    c.target ? (m <= c.target ? 'yes' : 'no') : '',
  ];
});
const lines = [head, head.map(() => '---'), ...body].map((cells) => `| ${cells.join(' | ')} |`);
process.stdout.write(`\n${lines.join('\n')}\n`);
