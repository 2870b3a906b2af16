#!/usr/bin/env node
// Builds fixtures/images (an OCI image layout with three small images) and fixtures/bundle.json.
// Deterministic: fixed mtimes and owners, entries in a fixed order, gzip header without mtime
// and with OS byte 255, so re-running produces byte-identical files.
// Usage: node scripts/make-fixtures.mjs [OUT_DIR]   (default: fixtures/ at the repository root)
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = resolve(process.argv[2] ?? join(ROOT, 'fixtures'));
const LAYOUT = join(OUT, 'images');
const REF_NAME = 'org.opencontainers.image.ref.name';
/** 2020-01-01T00:00:00Z: any fixed time works; zero confuses some tar readers. */
const MTIME = 1577836800;

const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

const sha256 = (data) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

// ---- tar (ustar), by hand -------------------------------------------------------------------

function octal(value, width) {
  // width includes the terminating NUL
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function tarHeader({ name, mode, size, type }) {
  const h = Buffer.alloc(512);
  const put = (offset, width, str) => {
    const b = Buffer.from(str, 'utf8');
    if (b.length > width) throw new Error(`tar field too long: ${str}`);
    b.copy(h, offset);
  };
  put(0, 100, name);
  put(100, 8, octal(mode, 8));
  put(108, 8, octal(0, 8)); // uid
  put(116, 8, octal(0, 8)); // gid
  put(124, 12, octal(size, 12));
  put(136, 12, octal(MTIME, 12));
  put(156, 1, type);
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  put(265, 32, 'root');
  put(297, 32, 'root');
  put(329, 8, octal(0, 8)); // devmajor
  put(337, 8, octal(0, 8)); // devminor
  // Checksum: sum of all bytes with the checksum field read as eight spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** files: [{ path, mode, content }]; parent directories are added, everything sorted by path. */
function tar(files) {
  const entries = new Map();
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/') + '/';
      entries.set(dir, { name: dir, mode: 0o755, type: '5', content: Buffer.alloc(0) });
    }
    entries.set(f.path, { name: f.path, mode: f.mode, type: '0', content: Buffer.from(f.content) });
  }
  const blocks = [];
  for (const name of [...entries.keys()].sort()) {
    const e = entries.get(name);
    blocks.push(tarHeader({ name: e.name, mode: e.mode, size: e.content.length, type: e.type }));
    blocks.push(e.content, Buffer.alloc((512 - (e.content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024)); // end of archive: two zero blocks
  return Buffer.concat(blocks);
}

function gzip(data) {
  const gz = gzipSync(data, { level: 9 });
  gz.writeUInt32LE(0, 4); // MTIME: none
  gz[9] = 255; // OS: unknown, whatever platform built it
  return gz;
}

// ---- layout -----------------------------------------------------------------------------------

/** Write a blob and return its descriptor. */
function blob(mediaType, data) {
  const digest = sha256(data);
  writeFileSync(join(LAYOUT, 'blobs', 'sha256', digest.slice('sha256:'.length)), data);
  return { mediaType, digest, size: data.length };
}

const json = (value) => Buffer.from(JSON.stringify(value));

/** One image: a layer holding `files`, its config, its manifest. Returns the manifest descriptor. */
function image({ files, arch, docker }) {
  const layerTar = tar(files);
  const layer = blob(docker ? MT.dockerLayer : MT.ociLayer, gzip(layerTar));
  const config = blob(
    docker ? MT.dockerConfig : MT.ociConfig,
    json({
      architecture: arch,
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
      config: {},
    }),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: docker ? MT.dockerManifest : MT.ociManifest,
    config,
    layers: [layer],
  };
  return blob(manifest.mediaType, json(manifest));
}

const named = (desc, ref) => ({ ...desc, annotations: { [REF_NAME]: ref } });

rmSync(LAYOUT, { recursive: true, force: true });
mkdirSync(join(LAYOUT, 'blobs', 'sha256'), { recursive: true });

const hello = image({
  docker: true,
  arch: 'amd64',
  files: [{ path: 'cnab/app/run', mode: 0o755, content: '#!/bin/sh\necho "hello from the cnab-oci fixture: $CNAB_ACTION"\n' }],
});

const webPlatforms = ['amd64', 'arm64'].map((arch) => ({
  arch,
  desc: image({ arch, files: [{ path: 'srv/web/arch', mode: 0o644, content: `web for linux/${arch}\n` }] }),
}));
const web = blob(
  MT.ociIndex,
  json({
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: webPlatforms.map(({ arch, desc }) => ({ ...desc, platform: { architecture: arch, os: 'linux' } })),
  }),
);

const worker = image({
  arch: 'amd64',
  files: [{ path: 'srv/worker/run', mode: 0o755, content: '#!/bin/sh\necho worker\n' }],
});

writeFileSync(join(LAYOUT, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
writeFileSync(
  join(LAYOUT, 'index.json'),
  JSON.stringify(
    {
      schemaVersion: 2,
      manifests: [
        named(hello, 'example.com/cnab-oci/hello-installer:0.1.0'),
        named(web, 'example.com/cnab-oci/web:1.0'),
        named(worker, 'example.com/cnab-oci/worker:1.0'),
      ],
    },
    null,
    2,
  ) + '\n',
);

// ---- bundle -----------------------------------------------------------------------------------

const bundle = {
  schemaVersion: 'v1.2.0',
  name: 'hello',
  version: '0.1.0',
  description: 'A small bundle for cnab-oci tests: one invocation image and two component images',
  keywords: ['cnab-oci', 'fixture'],
  maintainers: [{ name: 'cnab-oci', email: 'cnab-oci@example.com' }],
  invocationImages: [{ imageType: 'docker', image: 'example.com/cnab-oci/hello-installer:0.1.0' }],
  images: {
    web: { imageType: 'docker', image: 'example.com/cnab-oci/web:1.0', description: 'web frontend' },
    worker: { imageType: 'oci', image: 'example.com/cnab-oci/worker:1.0', description: 'background worker' },
  },
  definitions: {
    greeting: { type: 'string', default: 'hello' },
  },
  parameters: {
    greeting: {
      definition: 'greeting',
      description: 'What the installer says',
      destination: { env: 'GREETING' },
    },
  },
  credentials: {
    token: {
      description: 'API token for the web frontend',
      env: 'HELLO_TOKEN',
      required: true,
    },
  },
};
writeFileSync(join(OUT, 'bundle.json'), JSON.stringify(bundle, null, 2) + '\n');

console.log(`wrote ${LAYOUT} and ${join(OUT, 'bundle.json')}`);
