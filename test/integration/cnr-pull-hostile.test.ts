import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../../src/content/layout.js';
import { digestOf } from '../../src/oci/digest.js';
import { manifestMediaType } from '../../src/cnr/model/names.js';
import { releaseIndex, releaseManifest } from '../../src/cnr/store/oci-mapping.js';
import { runCli } from '../helpers/cli.js';
import { makeTarball, type Entry } from '../helpers/cnr-packages.js';
import { startCnrServer, type CnrServer } from '../helpers/cnr-server.js';

/**
 * `cnr pull` against a server that hands out hostile packages. cnab-oci's own server refuses to
 * store them, so they are written into its layout store directly, as another tool (or an old
 * registry migrated without checks) could have: the OCI content is well-formed and its CNR
 * digest is right, only the tar is hostile. The client must refuse to unpack it, write nothing,
 * and say why.
 */
const HOSTILE: Record<string, Entry[]> = {
  'dot-dot': [{ name: 'app/../../escaped.txt', content: 'out' }],
  absolute: [{ name: '/tmp/cnab-oci-absolute-escape.txt', content: 'out' }],
  'symlink-out': [{ name: 'app/link', type: 'symlink', linkname: '../../../etc' }, { name: 'app/link/passwd', content: 'x' }],
  'hardlink-out': [{ name: 'app/hard', type: 'link', linkname: '../../etc/passwd' }],
  device: [{ name: 'app/dev', type: 'character-device' }],
};

async function storeHostile(root: string, name: string, entries: Entry[]): Promise<void> {
  const blob = await makeTarball(entries);
  const layout = await OciLayout.open(join(root, 'evil', name), { create: true });
  const createdAt = '2026-12-01T00:00:00.000000';
  const built = releaseManifest(
    { package: `evil/${name}`, release: '1.0.0', mediaType: 'kpm', createdAt, metadata: null, packageCreatedAt: createdAt, digest: createHash('sha256').update(gunzipSync(blob)).digest('hex'), size: blob.length, blobDigest: digestOf(blob) },
    `evil_${name}.tar.gz`,
  );
  await layout.push(built.layer, blob);
  await layout.push(built.config.desc, built.config.bytes);
  await layout.push(built.manifest.desc, built.manifest.bytes);
  const index = releaseIndex(`evil/${name}`, '1.0.0', createdAt, [{ mediaType: 'kpm', manifest: { ...built.manifest.desc, artifactType: manifestMediaType('kpm') } }]);
  await layout.push(index.desc, index.bytes);
  await layout.tag(index.desc, 'release-1.0.0');
}

describe('cnr pull of hostile packages', () => {
  let work: string;
  let server: CnrServer;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-cnr-hostile-'));
    for (const [name, entries] of Object.entries(HOSTILE)) await storeHostile(join(work, 'store'), name, entries);
    server = await startCnrServer({ storage: `oci:${join(work, 'store')}`, args: ['--log-format', 'none'] });
  });
  afterAll(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it.each(Object.keys(HOSTILE))('refuses to unpack %s, writes nothing, and says why', async (name) => {
    const out = join(work, `out-${name}`);
    const result = await runCli(['cnr', 'pull', `127.0.0.1:${server.port}/evil/${name}@1.0.0`, '--output', out], { cwd: work });
    expect(result.code, result.stderr).not.toBe(0);
    expect(result.stderr).toMatch(/^cnab-oci: error: .*(refusing|outside|link|device|absolute|\.\.)/im);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out), 'no output directory left behind').toBe(false);
    expect(existsSync(join(work, 'escaped.txt'))).toBe(false);
    expect(existsSync('/tmp/cnab-oci-absolute-escape.txt')).toBe(false);
    expect((await readdir(work)).sort()).toEqual(['store']);
  });

  it('does not save it as a tarball either: what it hands out is safe to unpack', async () => {
    const file = join(work, 'dot-dot.tar.gz');
    const result = await runCli(['cnr', 'pull', `127.0.0.1:${server.port}/evil/dot-dot@1.0.0`, '--tarball', file], { cwd: work });
    expect(result.code, result.stderr).not.toBe(0);
    expect(result.stderr).toMatch(/\.\./);
    expect(existsSync(file)).toBe(false);
  });
});
