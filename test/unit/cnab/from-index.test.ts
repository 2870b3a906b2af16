import { describe, expect, it } from 'vitest';
import { convertBundle, findConfigDescriptor, relocationMapFromIndex } from '../../../src/cnab/index.js';
import { IndexSchema, type Index } from '../../../src/oci/schemas.js';
import type { Digest } from '../../../src/oci/digest.js';
import { InvalidContentError } from '../../../src/oci/errors.js';
import { parseReference } from '../../../src/oci/reference.js';
import { multi, multiRelocation } from '../../fixtures/cnab/multi.js';

const target = parseReference('localhost:5000/app:v1');
const d = (c: string): Digest => `sha256:${c.repeat(64)}`;
const parse = (b: Uint8Array): Index => IndexSchema.parse(JSON.parse(Buffer.from(b).toString('utf8')));

describe('from an index back to a relocation map', () => {
  it.each(['oci', 'docker'] as const)('round-trips a %s index: invocation images in order, components by name', (indexMediaType) => {
    const bundle = multi();
    const c = convertBundle(bundle, target, multiRelocation, { indexMediaType });
    const index = parse(c.index.bytes);
    expect(findConfigDescriptor(index)).toEqual({ ...c.configManifest.descriptor, annotations: { 'io.cnab.manifest.type': 'config' } });
    expect(relocationMapFromIndex(bundle, index, 'localhost:5000/app')).toEqual({
      'acme/inv:1': `localhost:5000/app@${d('1')}`,
      'acme/inv-arm:1': `localhost:5000/app@${d('2')}`,
      'acme/b:1': `localhost:5000/app@${d('4')}`,
      'acme/a:1': `localhost:5000/app@${d('5')}`,
      'acme/z:1': `localhost:5000/app@${d('3')}`,
    });
    expect(relocationMapFromIndex(bundle, index, parseReference('docker.io/acme/app:1'))['acme/inv:1']).toBe(`docker.io/acme/app@${d('1')}`);
  });

  const bundle = multi();
  const desc = (mediaType: string, annotations?: Record<string, string>) => ({ mediaType, digest: d('7'), size: 1, annotations });
  const M = 'application/vnd.oci.image.manifest.v1+json';
  const cases: Array<[string, Index, string]> = [
    ['no config', { schemaVersion: 2, manifests: [desc(M, { 'io.cnab.manifest.type': 'invocation' })] }, 'bundle config not found'],
  ];
  it.each(cases)('findConfigDescriptor: %s', (_n, index, message) => {
    expect(() => findConfigDescriptor(index)).toThrow(InvalidContentError);
    expect(() => findConfigDescriptor(index)).toThrow(message);
  });
  const bad: Array<[string, Index, string]> = [
    ['unsupported media type', { schemaVersion: 2, manifests: [desc('application/json', { 'io.cnab.manifest.type': 'component' })] }, 'unsupported manifest descriptor'],
    ['no type annotation', { schemaVersion: 2, manifests: [desc(M)] }, 'has no CNAB descriptor type annotation io.cnab.manifest.type'],
    ['unknown type', { schemaVersion: 2, manifests: [desc(M, { 'io.cnab.manifest.type': 'plugin' })] }, 'invalid CNAB descriptor type "plugin"'],
    ['component without name', { schemaVersion: 2, manifests: [desc(M, { 'io.cnab.manifest.type': 'component' })] }, 'component name missing'],
    ['component not in bundle', { schemaVersion: 2, manifests: [desc(M, { 'io.cnab.manifest.type': 'component', 'io.cnab.component.name': 'nope' })] }, 'component "nope"'],
    ['too many invocation images', { schemaVersion: 2, manifests: [1, 2, 3].map(() => desc(M, { 'io.cnab.manifest.type': 'invocation' })) }, 'unknown invocation image'],
  ];
  it.each(bad)('relocationMapFromIndex: %s', (_n, index, message) => {
    expect(() => relocationMapFromIndex(bundle, index, 'r/app')).toThrow(message);
  });
});
