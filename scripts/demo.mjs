#!/usr/bin/env node
// The README's first command: push the example bundle (whose images live in an OCI layout in
// fixtures/) into a fresh OCI layout directory, then pull it back and inspect it; sign it, copy
// it and verify the copy; then the CNR server's demo (scripts/cnr-demo.mjs). No server needed
// beyond the one it starts.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cnrDemo } from './cnr-demo.mjs';

const cli = join(import.meta.dirname, '..', 'dist', 'bin', 'cnab-oci.js');
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

// Signatures travel: sign the bundle and its images (cosign's format, a throwaway P-256 key),
// relocate it, and verify the copy.
console.log('\n# Signed once, verifiable wherever it is copied\n');
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
writeFileSync(join(work, 'demo.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
writeFileSync(join(work, 'demo.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
run('sign', `oci:${layout}:hello-0.1.0`, '--key', join(work, 'demo.key'), '--images');
run('copy', `oci:${layout}:hello-0.1.0`, `oci:${join(work, 'relocated')}`);
run('verify', `oci:${join(work, 'relocated')}:hello-0.1.0`, '--key', join(work, 'demo.pub'), '--images');

console.log('\n# The Container Native Registry: the cnr-server README demo against cnab-oci cnr serve\n');
await cnrDemo();
