#!/usr/bin/env node
// The README's first command: push the example bundle (whose images live in an OCI layout in
// fixtures/) into a fresh OCI layout directory, then pull it back and inspect it; then the CNR
// server's demo (scripts/cnr-demo.mjs). No server needed beyond the one it starts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cnrDemo } from './cnr-demo.mjs';

const cli = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const fixtures = join(import.meta.dirname, '..', 'fixtures');
const work = mkdtempSync(join(tmpdir(), 'cnab-oci-demo-'));
const layout = join(work, 'layout');

function run(...args) {
  console.log(`$ cnab-oci ${args.join(' ')}`);
  const out = execFileSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  process.stdout.write(out);
  return out.trim();
}

run('push', join(fixtures, 'bundle.json'), '--target', `oci:${layout}:hello-0.1.0`,
  '--images-from', `oci:${join(fixtures, 'images')}`, '--relocation-map', join(work, 'relocation.json'));
run('inspect', `oci:${layout}:hello-0.1.0`);
run('pull', `oci:${layout}:hello-0.1.0`, '--bundle', join(work, 'pulled.json'), '--relocation-map', join(work, 'pulled-relocation.json'));
const pulled = JSON.parse(readFileSync(join(work, 'pulled.json'), 'utf8'));
console.log(`\nround trip ok: ${pulled.name} ${pulled.version}; everything is in ${work}`);

console.log('\n# The Container Native Registry: the cnr-server README demo against cnab-oci cnr serve\n');
await cnrDemo();
