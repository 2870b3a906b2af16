// The CNR half of `npm run demo`: start `cnab-oci cnr serve` on an OCI layout store in a temporary
// directory, replay the cnr-server README's curl demo against it, and stop it. No other server.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'dist', 'bin', 'cnab-oci.js');
// The chart of the cnr-server README's demo, as the reference server stored it (base64 of the .tar.gz).
const blob = readFileSync(join(import.meta.dirname, 'cnr', 'elasticsearch-2.2.1.tar.gz.b64'), 'utf8').trim();

export async function cnrDemo() {
  const work = mkdtempSync(join(tmpdir(), 'cnab-oci-cnr-demo-'));
  const port = await freePort();
  const base = `http://localhost:${port}`;
  console.log(`$ cnab-oci cnr serve --listen 127.0.0.1:${port} --storage oci:${join(work, 'cnr-data')}`);
  const server = spawn(process.execPath, [cli, 'cnr', 'serve', '--listen', `127.0.0.1:${port}`, '--storage', `oci:${join(work, 'cnr-data')}`, '--log-format', 'none'], { stdio: ['ignore', 'inherit', 'inherit'] });
  try {
    await waitFor(`${base}/version`);
    const body = JSON.stringify({ blob, release: '2.2.1', media_type: 'helm' });
    curl(['-s', '-XPOST', `${base}/api/v1/packages/myname/elasticsearch`, '-d', body], `curl -XPOST ${base}/api/v1/packages/myname/elasticsearch -d '{"blob": "H4sI...", "release": "2.2.1", "media_type": "helm"}'`);
    curl(['-s', `${base}/api/v1/packages/myname/elasticsearch/2.2.1/helm`]);
    const pulled = execFileSync('curl', ['-s', `${base}/cnr/api/v1/packages/myname/elasticsearch/blobs/sha256/72ed15c9a65961ecd034cca098ec18eb99002cd402824aae8a674a8ae41bd0ef`]);
    console.log(`$ curl ${base}/cnr/api/v1/packages/myname/elasticsearch/blobs/sha256/72ed15c9... | wc -c\n${pulled.length}`);
    curl(['-s', `${base}/api/v1/packages`]);
    const blobs = readdirSync(join(work, 'cnr-data', 'myname', 'elasticsearch', 'blobs', 'sha256')).length;
    console.log(`\nthe package is OCI content: ${join(work, 'cnr-data', 'myname', 'elasticsearch')} is an OCI image layout (${blobs} blobs)`);
  } finally {
    server.kill('SIGTERM');
  }
}

function curl(args, shown) {
  console.log(`$ ${shown ?? `curl ${args.filter((a) => a !== '-s').join(' ')}`}`);
  console.log(execFileSync('curl', args, { encoding: 'utf8' }));
}

async function waitFor(url) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`cnr serve did not answer at ${url}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
