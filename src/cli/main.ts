#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

// The entry point. `--version` is answered here, before commander and the command definitions
// are loaded (bench/startup.mjs: they are most of what the CLI adds to Node's own start).

const args = process.argv.slice(2);

// V8 compiles undici's HTTP parser (WebAssembly) a second time, optimised, in the background,
// and the process waits for that at exit: 90-180 ms on every command that makes a request, on
// 2 cores. Short commands keep the baseline compiler's code; the server, which runs for long,
// gets the optimised one.
const serving = args[args.indexOf('cnr') + 1] === 'serve' && args.includes('cnr');
if (!serving) setFlagsFromString('--liftoff-only');

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${version}\n`);
} else {
  const { run } = await import('./program.js');
  await run(process.argv, version);
}
