import { describe, expect, it } from 'vitest';
import { CnrError } from '../../../src/cnr/model/errors.js';
import { parseRelease, selectRelease, sortDescending } from '../../../src/cnr/model/releases.js';

const releases = ['0.0.1', '1.0.1', '1.2.0', '1.5.3', '2.0.0-beta.1', '2.0.0', '3.0.0-alpha.2'];

describe('release queries', () => {
  it('takes the highest release for default, prereleases included', () => {
    expect(selectRelease(releases, 'default')).toBe('3.0.0-alpha.2');
    expect(selectRelease(['1.0.0', '1.1.0-rc.1'], 'default')).toBe('1.1.0-rc.1');
    expect(selectRelease([], 'default')).toBeUndefined();
  });

  it('answers an exact release only when it exists', () => {
    expect(selectRelease(releases, '1.2.0')).toBe('1.2.0');
    expect(selectRelease(releases, '1.2.1')).toBeUndefined();
  });

  it('gives the highest match of a range, comma meaning and', () => {
    expect(selectRelease(releases, '>1.2')).toBe('2.0.0');
    expect(selectRelease(releases, '>=1.5.0,<2.0.0')).toBe('1.5.3');
    expect(selectRelease(releases, '<1.0.0')).toBe('0.0.1');
    expect(selectRelease(releases, '>=1.0.0,!=2.0.0')).toBe('1.5.3');
    expect(selectRelease(releases, '==1.0.1')).toBe('1.0.1');
    expect(selectRelease(releases, '>9.0.0')).toBeUndefined();
  });

  it('matches prereleases only when the range names one', () => {
    expect(selectRelease(releases, '>2.0.0')).toBeUndefined();
    expect(selectRelease(releases, '>=3.0.0-alpha')).toBe('3.0.0-alpha.2');
    expect(selectRelease(['2.0.0-beta.1'], '>=1.0.0')).toBeUndefined();
  });

  it('refuses what is neither a version, default nor a range, as 422 invalid-release', () => {
    for (const bad of ['1.0', '1', 'abc', 'latest', '>abc', '', 'v1.0.0']) {
      const err = (() => {
        try {
          selectRelease(releases, bad);
        } catch (e) {
          return e;
        }
      })();
      expect(err, bad).toBeInstanceOf(CnrError);
      expect((err as CnrError).status, bad).toBe(422);
      expect((err as CnrError).code, bad).toBe('invalid-release');
    }
  });

  it('accepts SemVer 2.0 releases exactly as written', () => {
    expect(parseRelease('1.2.3-rc.1+build.5')).toBe('1.2.3-rc.1+build.5');
    for (const bad of ['1.0', 'v1.0.0', '01.0.0', '1.0.0 ', 'latest', `1.0.0-${'a'.repeat(120)}`]) expect(() => parseRelease(bad), bad).toThrow(CnrError);
  });

  it('sorts by SemVer precedence, highest first', () => {
    expect(sortDescending(['1.10.0', '1.9.0', '1.10.0-rc.1', '0.1.0'])).toEqual(['1.10.0', '1.10.0-rc.1', '1.9.0', '0.1.0']);
  });
});
