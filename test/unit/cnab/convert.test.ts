import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertBundle, parseBundle, type Bundle } from '../../../src/cnab/index.js';
import { multi, multiRelocation } from '../../fixtures/cnab/multi.js';
import { InputError } from '../../../src/oci/errors.js';
import { parseReference } from '../../../src/oci/reference.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const target = parseReference('localhost:5000/app:v1');
const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

describe('convertBundle', () => {
  it('several invocation images in order, components sorted by name (Go sort.Strings: uppercase first)', () => {
    const c = convertBundle(multi(), target, multiRelocation);
    const cm = c.configManifest.descriptor;
    expect(cm.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(text(c.index.bytes)).toBe(
      '{"schemaVersion":2,"manifests":[' +
        `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${cm.digest}","size":${cm.size},"annotations":{"io.cnab.manifest.type":"config"}},` +
        // relocated through the map
        `{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"${d('1')}","size":100,"annotations":{"io.cnab.manifest.type":"invocation"}},` +
        // not in the map: taken to be in the target repository at its contentDigest; imageType oci
        `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${d('2')}","size":200,"annotations":{"io.cnab.manifest.type":"invocation"}},` +
        `{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"${d('4')}","size":4,"annotations":{"io.cnab.component.name":"Beta","io.cnab.manifest.type":"component"}},` +
        `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${d('5')}","size":5,"annotations":{"io.cnab.component.name":"alpha","io.cnab.manifest.type":"component"}},` +
        `{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"${d('3')}","size":3,"annotations":{"io.cnab.component.name":"zeta","io.cnab.manifest.type":"component"}}],` +
        // makeAnnotations: no keywords/maintainers in the bundle, so no such annotations; HTML-escaped description.
        '"annotations":{"io.cnab.runtime_version":"v1.0.0","org.opencontainers.artifactType":"application/vnd.cnab.manifest.v1",' +
        '"org.opencontainers.image.description":"\\u003c\\u0026\\u003e","org.opencontainers.image.title":"multi","org.opencontainers.image.version":"2.0.0"}}',
    );
    expect(c.index.descriptor).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json', size: c.index.bytes.length });
  });

  it('authors and keywords annotations are json.Marshal output (Go struct order, HTML escaping), even when empty', () => {
    const b = { ...multi(), maintainers: [{ name: 'Jane <j>', email: '', url: 'u', extra: 'x' }], keywords: [] as string[] };
    const ann = JSON.parse(text(convertBundle(b, target, multiRelocation).index.bytes)).annotations;
    expect(ann['org.opencontainers.image.authors']).toBe('[{"name":"Jane \\u003cj\\u003e","url":"u"}]');
    expect(ann['io.cnab.keywords']).toBe('[]');
  });

  it('oci config media type: same blob, OCI image config descriptor', () => {
    const { bundle } = parseBundle(readFileSync(join(import.meta.dirname, '..', '..', '..', 'schemas', 'cnab-to-oci/helloworld-complete.bundle.json')), 'b.json');
    const c = convertBundle(bundle, target, {}, { configMediaType: 'oci' });
    const cfg = 'sha256:e91b9dfcbbb3b88bac94726f276b89de46e4460b55f6e6d6f876e666b150ec5b';
    expect(text(c.configManifest.bytes)).toBe(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${cfg}","size":498},"layers":null}`);
  });

  it('docker fallbacks: schema2 config manifest (indented, config as layer) and manifest list with mediaType last', () => {
    const { bundle } = parseBundle(readFileSync(join(import.meta.dirname, '..', '..', '..', 'schemas', 'cnab-to-oci/helloworld-complete.bundle.json')), 'b.json');
    const c = convertBundle(bundle, target, {}, { configMediaType: 'docker', indexMediaType: 'docker' });
    const cfg = 'sha256:e91b9dfcbbb3b88bac94726f276b89de46e4460b55f6e6d6f876e666b150ec5b';
    expect(c.config.descriptor).toEqual({ mediaType: 'application/vnd.docker.container.image.v1+json', digest: cfg, size: 498 });
    const layer = `{\n         "mediaType": "application/vnd.docker.container.image.v1+json",\n         "digest": "${cfg}",\n         "size": 498\n      }`;
    expect(text(c.configManifest.bytes)).toBe(
      `{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",\n` +
        `   "config": {\n      "mediaType": "application/vnd.docker.container.image.v1+json",\n      "digest": "${cfg}",\n      "size": 498\n   },\n` +
        `   "layers": [\n      ${layer}\n   ]\n}`,
    );
    expect(c.configManifest.descriptor.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(c.index.descriptor.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    const idx = text(c.index.bytes);
    expect(idx.startsWith(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"${c.configManifest.descriptor.digest}"`)).toBe(true);
    expect(idx.endsWith('},"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"}')).toBe(true);
    // Same content as the OCI index apart from the media type key.
    const oci = convertBundle(bundle, target, {}, { configMediaType: 'docker', indexMediaType: 'oci' });
    expect(idx.replace(',"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"}', '}')).toBe(text(oci.index.bytes));
  });
});

describe('convertBundle errors name the image', () => {
  const hello = (img: Record<string, unknown>): Bundle =>
    parseBundle(JSON.stringify({ schemaVersion: 'v1.0.0', name: 'h', version: '0.1.1', invocationImages: [{ image: 'cnab/helloworld:0.1.1', imageType: 'docker', ...img }] }), 'b.json').bundle;
  const cases: Array<[string, Bundle, Record<string, string>, string]> = [
    ['size not set', hello({ contentDigest: d('a') }), {}, 'invocationImages[0] (cnab/helloworld:0.1.1): size is not set'],
    ['no digest anywhere', hello({ size: 1 }), {}, 'invocationImages[0] (cnab/helloworld:0.1.1): not in the relocation map and has no contentDigest'],
    ['other repository', hello({ size: 1 }), { 'cnab/helloworld:0.1.1': `localhost:5000/other@${d('a')}` }, 'invocationImages[0] (cnab/helloworld:0.1.1): relocated image localhost:5000/other@'],
    ['tag not digest', hello({ size: 1 }), { 'cnab/helloworld:0.1.1': 'localhost:5000/app:v2' }, 'is not a digested reference'],
    ['bad reference', hello({ size: 1 }), { 'cnab/helloworld:0.1.1': 'UPPER/case@x' }, 'relocated image "UPPER/case@x" is not a valid reference'],
    ['image type', hello({ size: 1, imageType: 'qcow', contentDigest: d('a') }), {}, 'unsupported image type "qcow"'],
    ['media type', hello({ size: 1, mediaType: 'application/json', contentDigest: d('a') }), {}, 'unsupported media type "application/json"'],
  ];
  it.each(cases)('%s', (_n, bundle, map, message) => {
    expect(() => convertBundle(bundle, target, map)).toThrow(InputError);
    expect(() => convertBundle(bundle, target, map)).toThrow(message);
  });
  it('a component', () => {
    const b = { ...multi(), images: { web: { image: 'acme/web:1', size: 0, contentDigest: d('9') } } };
    expect(() => convertBundle(b, target, multiRelocation)).toThrow('images.web (acme/web:1): size is not set');
  });
  it('no invocation image', () => {
    expect(() => convertBundle({ ...multi(), invocationImages: [] }, target, {})).toThrow('invocationImages: the bundle has no invocation image');
  });
});
