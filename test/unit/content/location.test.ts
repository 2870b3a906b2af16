import { describe, expect, it } from 'vitest';
import { parseLocation } from '../../../src/content/location.js';
import { InputError, InvalidDigestError, InvalidReferenceError } from '../../../src/oci/errors.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseLocation', () => {
  it.each([
    ['oci:./layout', { kind: 'layout', dir: './layout' }],
    ['oci:/tmp/layout:v1', { kind: 'layout', dir: '/tmp/layout', tag: 'v1' }],
    ['oci:layout:1.0.0-rc_1', { kind: 'layout', dir: 'layout', tag: '1.0.0-rc_1' }],
    [`oci:layout@${D}`, { kind: 'layout', dir: 'layout', tag: D }],
    // a colon inside the path: what follows the last ':' is not a tag, so the path stays whole
    ['oci:/tmp/a:b/layout', { kind: 'layout', dir: '/tmp/a:b/layout' }],
    ['oci:/tmp/a:b/layout:v2', { kind: 'layout', dir: '/tmp/a:b/layout', tag: 'v2' }],
    // only the part after the LAST ':' is the tag
    ['oci:images:example.com/app:1.0', { kind: 'layout', dir: 'images:example.com/app', tag: '1.0' }],
    ['oci:layout:-bad', { kind: 'layout', dir: 'layout:-bad' }],
    ['oci-archive:bundle.tar', { kind: 'archive', file: 'bundle.tar' }],
    ['oci-archive:/x/bundle.tar:v1', { kind: 'archive', file: '/x/bundle.tar', tag: 'v1' }],
    [`oci-archive:bundle.tar@${D}`, { kind: 'archive', file: 'bundle.tar', tag: D }],
  ])('%s', (input, expected) => {
    expect(parseLocation(input)).toEqual(expected);
  });

  it('registry references go through parseReference', () => {
    const loc = parseLocation('localhost:5000/acme/app:1.0');
    expect(loc.kind).toBe('registry');
    if (loc.kind !== 'registry') return;
    expect(loc.reference.toString()).toBe('localhost:5000/acme/app:1.0');
    const hub = parseLocation(`nginx@${D}`);
    expect(hub.kind === 'registry' && hub.reference.toString()).toBe(`docker.io/library/nginx@${D}`);
  });

  it('rejects an empty directory or file', () => {
    expect(() => parseLocation('oci:')).toThrow(InputError);
    expect(() => parseLocation('oci::v1')).toThrow(/oci::v1: empty directory name/);
    expect(() => parseLocation(`oci:@${D}`)).toThrow(InputError);
    expect(() => parseLocation('oci-archive::v1')).toThrow(/empty file name/);
  });

  it('rejects a malformed digest', () => {
    expect(() => parseLocation('oci:layout@sha256:abc')).toThrow(InvalidDigestError);
  });

  it('rejects bad registry references', () => {
    expect(() => parseLocation('Acme/App')).toThrow(InvalidReferenceError);
  });
});
