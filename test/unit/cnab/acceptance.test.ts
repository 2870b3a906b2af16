import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertBundle, parseBundle } from '../../../src/cnab/index.js';
import { parseReference } from '../../../src/oci/reference.js';

const SPEC = join(import.meta.dirname, '..', '..', '..', 'schemas', 'cnab-to-oci/helloworld-complete.bundle.json');
const INVOCATION_DIGEST = 'sha256:a59a4e74d9cc89e4e75dfb2cc7ea5c108e4236ba6231b53081a9e2506d1197b6';

/** The public vector: a real cnab-to-oci push (CNAB config media type, OCI index). */
describe('digest-identical with cnab-to-oci', () => {
  const { bundle } = parseBundle(readFileSync(SPEC), 'helloworld-complete.bundle.json');
  const target = parseReference('localhost:5000/helloworld:0.1.1');
  const converted = convertBundle(bundle, target, { 'cnab/helloworld:0.1.1': `${target.name}@${INVOCATION_DIGEST}` });

  it('config blob', () => {
    expect(converted.config.descriptor).toEqual({
      mediaType: 'application/vnd.cnab.config.v1+json',
      digest: 'sha256:e91b9dfcbbb3b88bac94726f276b89de46e4460b55f6e6d6f876e666b150ec5b',
      size: 498,
    });
  });

  it('config manifest', () => {
    expect(Buffer.from(converted.configManifest.bytes).toString()).toBe(
      '{"schemaVersion":2,"config":{"mediaType":"application/vnd.cnab.config.v1+json","digest":"sha256:e91b9dfcbbb3b88bac94726f276b89de46e4460b55f6e6d6f876e666b150ec5b","size":498},"layers":null}',
    );
  });

  it('index', () => {
    expect(converted.index.descriptor.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(converted.index.descriptor.digest).toBe('sha256:55c6da48fe8553696bf3e2c940ea667e2d2fda3d55614a19dbd7d084780c0807');
  });

  it('does not depend on the target repository (descriptors carry digests only)', () => {
    const other = parseReference('registry.example.com/a/b:tag');
    const again = convertBundle(bundle, other, {});
    expect(again.index.descriptor.digest).toBe(converted.index.descriptor.digest);
  });
});
