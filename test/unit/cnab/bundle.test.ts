import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBundle } from '../../../src/cnab/bundle.js';
import { imageSlots } from '../../../src/cnab/images.js';
import { canonicalBundleBytes } from '../../../src/cnab/project.js';
import { InputError } from '../../../src/oci/errors.js';

const CNAB_EXAMPLES = join(import.meta.dirname, '..', '..', '..', 'schemas', 'cnab/examples');
const C2O = join(import.meta.dirname, '..', '..', '..', 'schemas', 'cnab-to-oci');

describe('parseBundle accepts the spec examples', () => {
  const files = [
    ...readdirSync(CNAB_EXAMPLES).filter((f) => f.endsWith('bundle.json')).map((f) => join(CNAB_EXAMPLES, f)),
    join(C2O, 'helloworld-bundle.json'),
    join(C2O, 'helloworld-complete.bundle.json'),
  ];
  it.each(files)('%s', (file) => {
    const { bundle, unknownFields } = parseBundle(readFileSync(file), file);
    expect(bundle.invocationImages.length).toBeGreaterThan(0);
    expect(unknownFields).toEqual([]);
  });

  it('the cnab-to-oci e2e golden (a config blob cnab-go wrote) parses and is a fixed point of the projection', () => {
    const text = readFileSync(join(C2O, 'e2e-bundle.json.golden.template'), 'utf8')
      .replace('{{ .ServiceImage }}', 'localhost:5000/hello:1')
      .replace('{{ .WhalesayImage }}', 'localhost:5000/whalesay:1')
      .replace('{{ .InvocationDigest }}', 'sha256:a59a4e74d9cc89e4e75dfb2cc7ea5c108e4236ba6231b53081a9e2506d1197b6')
      .replace('{{ .InvocationImage }}', 'localhost:5000/invoc:1');
    // It holds "destination": null, Go's form of a nil *Location, which we accept on read.
    const { bundle } = parseBundle(text, 'golden.json');
    expect(Buffer.from(canonicalBundleBytes(bundle)).toString('utf8')).toBe(text);
  });

  it('keeps unknown fields and reports the top-level ones', () => {
    const { bundle, unknownFields } = parseBundle('{"schemaVersion":"v1","name":"n","version":"1.0.0","invocationImages":[],"x-vendor":{"a":1},"foo":1}', 'b.json');
    expect(unknownFields).toEqual(['x-vendor', 'foo']);
    expect(bundle['x-vendor']).toEqual({ a: 1 });
  });
});

describe('parseBundle errors: one line naming the file and the first problem', () => {
  const base = { schemaVersion: 'v1.0.0', name: 'n', version: '1.0.0', invocationImages: [{ image: 'cnab/helloworld:0.1.1', imageType: 'docker' }] };
  const cases: Array<[string, unknown, string]> = [
    ['image not a string', { ...base, invocationImages: [{ image: 42 }] }, 'bundle.json: invocationImages[0].image: expected string, got integer'],
    ['missing name', { ...base, name: undefined }, 'bundle.json: name: is required'],
    ['missing invocationImages', { ...base, invocationImages: undefined }, 'bundle.json: invocationImages: is required'],
    ['misspelled invocationImages', { ...base, invocationImages: undefined, invocationImage: base.invocationImages }, 'bundle.json: invocationImages: is required (found "invocationImage": a typo?)'],
    ['misspelled component image', { ...base, images: { web: { Imag: 'x' } } }, 'bundle.json: images.web.image: is required (found "Imag": a typo?)'],
    ['negative size', { ...base, invocationImages: [{ image: 'a', size: -1 }] }, 'bundle.json: invocationImages[0].size: must be >= 0'],
    ['fractional size', { ...base, invocationImages: [{ image: 'a', size: 1.5 }] }, 'bundle.json: invocationImages[0].size: expected integer, got number'],
    ['version latest', { ...base, version: 'latest' }, 'bundle.json: version: "latest" does not match the pattern'],
    ['component without image', { ...base, images: { web: { size: 1 } } }, 'bundle.json: images.web.image: is required'],
    ['action key with dots', { ...base, actions: { 'io.cnab.x': { modifies: 'yes' } } }, 'bundle.json: actions["io.cnab.x"].modifies: expected boolean, got string'],
    ['parameter without destination', { ...base, parameters: { p: { definition: 'd' } } }, 'bundle.json: parameters.p.destination: is required'],
    ['output path outside outputs', { ...base, outputs: { o: { definition: 'd', path: '/tmp/o' } } }, 'bundle.json: outputs.o.path: "/tmp/o" does not match the pattern'],
    ['definition with bad maxLength', { ...base, definitions: { d: { type: 'string', maxLength: 'x' } } }, 'bundle.json: definitions.d.maxLength: expected number, got string'],
    ['nested definition', { ...base, definitions: { d: { properties: { a: { type: 5 } } } } }, 'bundle.json: definitions.d.properties.a.type: expected a type name or a list of them, got integer'],
    ['definition not a schema', { ...base, definitions: { d: 'string' } }, 'bundle.json: definitions.d: expected a JSON Schema (object or boolean), got string'],
    ['custom not an object', { ...base, custom: [] }, 'bundle.json: custom: expected object, got array'],
    ['root array', [], 'bundle.json: expected a JSON object, got array'],
  ];
  it.each(cases)('%s', (_name, value, message) => {
    let err: unknown;
    try {
      parseBundle(JSON.stringify(value), 'bundle.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain(message);
    expect((err as Error).message).not.toContain('\n');
  });

  it('JSON syntax errors carry line and column', () => {
    expect(() => parseBundle('{\n  "name": "x",\n}', 'bundle.json')).toThrow('bundle.json: line 3, column 1: expected a double-quoted property name, found "}"');
    expect(() => parseBundle('{"a": tru}', 'bundle.json')).toThrow('bundle.json: line 1, column 7: expected a value, found "t"');
    expect(() => parseBundle('', 'bundle.json')).toThrow('bundle.json: line 1, column 1: expected a value, found end of input');
    expect(() => parseBundle('{} x', 'bundle.json')).toThrow('bundle.json: line 1, column 4: unexpected text after the JSON value');
    expect(() => parseBundle('{"a": "x\ny"}', 'bundle.json')).toThrow('bundle.json: line 1, column 9: control character in string');
    expect(() => parseBundle('\uFEFF{}', 'bundle.json')).toThrow('byte order mark');
  });

  it('numbers Go cannot hold in a float64 are refused', () => {
    expect(() => parseBundle('{"schemaVersion":"v1","name":"n","version":"1.0.0","invocationImages":[],"custom":{"x":[1e400]}}', 'b.json')).toThrow(
      'b.json: custom.x[0]: number is out of range for a 64-bit float',
    );
  });
});

describe('imageSlots', () => {
  it('invocation images in order, then components in Go string order, with their fields', () => {
    const { bundle } = parseBundle(
      JSON.stringify({
        schemaVersion: 'v1', name: 'n', version: '1.0.0',
        invocationImages: [{ image: 'i0' }, { image: 'i1', size: 3 }],
        images: { zeta: { image: 'z' }, alpha: { image: 'a' }, Beta: { image: 'b', contentDigest: 'sha256:x' } },
      }),
      'b.json',
    );
    expect(imageSlots(bundle).map(({ kind, path, image }) => `${kind} ${path} ${image.image}`)).toEqual([
      'invocation invocationImages[0] i0',
      'invocation invocationImages[1] i1',
      'component images.Beta b',
      'component images.alpha a',
      'component images.zeta z',
    ]);
    expect(imageSlots(bundle)[1]).toMatchObject({ kind: 'invocation', index: 1, image: { size: 3 } });
    expect(imageSlots(bundle)[2]).toMatchObject({ kind: 'component', name: 'Beta', image: { contentDigest: 'sha256:x' } });
    // The slot holds the bundle's own object: a fixup on a copy fills it in place.
    expect(imageSlots(bundle)[0]!.image).toBe(bundle.invocationImages[0]);
  });
});
