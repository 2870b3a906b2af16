import { describe, expect, it } from 'vitest';
import { CnrError } from '../../../src/cnr/model/errors.js';
import { blobFilename, channelTag, parseChannelName, parseMediaType, parsePackageName, parseTag, plainTag, releaseTag } from '../../../src/cnr/model/names.js';

describe('CNR names', () => {
  it('accepts namespace/name in the OCI repository grammar and nothing a file system reads specially', () => {
    expect(parsePackageName('titi', 'rocket-chat.v2').full).toBe('titi/rocket-chat.v2');
    for (const [ns, name] of [['..', 'x'], ['a/b', 'c'], ['Titi', 'x'], ['a', ''], ['a', '.hidden'], ['a', 'x-'], ['a', 'x%2Fy'], ['a', 'x\u0000']]) {
      expect(() => parsePackageName(ns!, name!), `${ns}/${name}`).toThrow(CnrError);
    }
  });

  it('reduces every generation of full media types to the short form', () => {
    expect(parseMediaType('helm')).toBe('helm');
    expect(parseMediaType('application/vnd.cnr.package-manifest.helm.v0.json')).toBe('helm');
    expect(parseMediaType('application/vnd.cnr.package.docker-compose.v1.tar+gzip')).toBe('docker-compose');
    expect(parseMediaType('application/vnd.appr.package-manifest.kpm.v0.json')).toBe('kpm');
    for (const bad of ['', 'Helm', 'a b', 'x/y', '../kpm']) expect(() => parseMediaType(bad), bad).toThrow(CnrError);
  });

  it('maps releases and channels to tags that cannot collide, and back', () => {
    expect(releaseTag('1.0.0+build.1')).toBe('release-1.0.0_build.1');
    expect(plainTag('1.0.0+build.1')).toBe('1.0.0_build.1');
    expect(channelTag('stable')).toBe('channel-stable');
    expect(parseTag('release-1.0.0_build.1')).toEqual({ kind: 'release', release: '1.0.0+build.1' });
    expect(parseTag('channel-stable')).toEqual({ kind: 'channel', channel: 'stable' });
    expect(parseTag('1.0.0')).toEqual({ kind: 'plain', release: '1.0.0' });
    expect(parseTag('latest')).toBeUndefined();
    expect(() => parseChannelName('bad name')).toThrow(CnrError);
  });

  it('names blobs as the reference does', () => {
    expect(blobFilename(parsePackageName('myname', 'elasticsearch'), '72ed15c9a65961ecd034cca098ec18eb99002cd402824aae8a674a8ae41bd0ef')).toBe('myname_elasticsearch_72ed15c9.tar.gz');
  });
});
