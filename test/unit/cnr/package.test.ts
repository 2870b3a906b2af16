import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CnrError } from '../../../src/cnr/model/errors.js';
import { chartMetadata, inspectPackage } from '../../../src/cnr/model/package.js';
import { makeChart, makeTarball } from '../../helpers/cnr-packages.js';

async function refusal(blob: Buffer, options = {}): Promise<CnrError> {
  try {
    await inspectPackage(blob, options);
  } catch (err) {
    return err as CnrError;
  }
  throw new Error('expected a refusal');
}

describe('inspectPackage', () => {
  it('gives the CNR digest: sha256 of the gunzipped tar, not of the gzip bytes', async () => {
    const blob = await makeTarball([{ name: 'app/manifest.yaml', content: 'a: 1\n' }]);
    const content = await inspectPackage(blob);
    expect(content.digest).toBe(createHash('sha256').update(gunzipSync(blob)).digest('hex'));
    expect(content.digest).not.toBe(createHash('sha256').update(blob).digest('hex'));
    expect(content.size).toBe(blob.length);
    expect(content.chart).toBeUndefined();
  });

  it('recognises a Helm chart: one top directory holding Chart.yaml', async () => {
    const content = await inspectPackage(await makeChart('nginx', '1.2.3'));
    expect(content.chart).toEqual({ name: 'nginx', version: '1.2.3', description: 'A test chart', apiVersion: 'v2' });
    const twoTops = await makeTarball([{ name: 'a/Chart.yaml', content: 'name: a\nversion: 1.0.0\n' }, { name: 'b/x', content: 'x' }]);
    expect((await inspectPackage(twoTops)).chart).toBeUndefined();
  });

  it('refuses what is not a gzipped tar, or would reach outside the archive, as 422', async () => {
    const cases: Array<[string, Buffer]> = [
      ['not gzip', Buffer.from('hello')],
      ['gzip, not tar', gzipSync(Buffer.from('just some text that is not a tar archive at all'.repeat(20)))],
      ['empty', gzipSync(Buffer.alloc(1024))],
      ['absolute', await makeTarball([{ name: '/etc/passwd', content: 'x' }])],
      ['dot-dot', await makeTarball([{ name: 'app/../../x', content: 'x' }])],
      ['symlink out', await makeTarball([{ name: 'app/l', type: 'symlink', linkname: '../../etc/passwd' }])],
      ['absolute symlink', await makeTarball([{ name: 'app/l', type: 'symlink', linkname: '/etc/passwd' }])],
    ];
    for (const [what, blob] of cases) {
      const err = await refusal(blob);
      expect(err, what).toBeInstanceOf(CnrError);
      expect(err.status, what).toBe(422);
    }
    const inside = await makeTarball([{ name: 'app/x', content: 'x' }, { name: 'app/l', type: 'symlink', linkname: 'x' }]);
    expect((await inspectPackage(inside)).digest).toMatch(/^[a-f0-9]{64}$/);
  });

  it('refuses a package that unpacks beyond the limit (a gzip bomb)', async () => {
    const bomb = await makeTarball([{ name: 'app/zeros', content: Buffer.alloc(4 * 1024 * 1024) }]);
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect((await refusal(bomb, { maxUnpackedSize: 1024 * 1024 })).message).toContain('unpacks to more than');
  });

  it('reads Chart.yaml as Helm marshals it: known fields in order, versions as strings', () => {
    expect(chartMetadata('version: 1.0\nname: x\nfoo: bar\nappVersion: 2\n')).toEqual({ name: 'x', version: '1.0', appVersion: '2' });
    expect(chartMetadata('name: x\n')).toBeUndefined();
    expect(chartMetadata(': : :')).toBeUndefined();
  });
});
