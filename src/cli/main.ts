#!/usr/bin/env node
import { readFileSync } from 'node:fs';

// The entry point. `--version` is answered here, before commander and the command definitions
// are loaded (bench/startup.mjs: they are most of what the CLI adds to Node's own start).

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${version}\n`);
} else {
  const { run } = await import('./program.js');
  await run(process.argv, version);
}
