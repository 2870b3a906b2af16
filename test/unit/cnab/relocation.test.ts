import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRelocationMap, serializeRelocationMap } from '../../../src/cnab/relocation.js';

describe('relocation maps', () => {
  it('parses the spec example', () => {
    const map = parseRelocationMap(readFileSync(join(import.meta.dirname, '..', '..', '..', 'schemas', 'cnab/examples/103.01-relocation-mapping.json')), 'map.json');
    expect(map['outside/helloworld:0.1.0']).toBe('my.registry/helloworld:0.1.0');
  });
  it('serializes with sorted keys, two-space indent and a trailing newline', () => {
    expect(serializeRelocationMap({ 'z/img:1': 'r/app@sha256:1', 'a/img:1': 'r/app@sha256:2' })).toBe(
      '{\n  "a/img:1": "r/app@sha256:2",\n  "z/img:1": "r/app@sha256:1"\n}\n',
    );
    expect(serializeRelocationMap({})).toBe('{}\n');
  });
  it('one-line errors', () => {
    expect(() => parseRelocationMap('{"a": 1}', 'map.json')).toThrow('map.json: a: expected string, got number');
    expect(() => parseRelocationMap('[]', 'map.json')).toThrow('map.json: expected a JSON object');
    expect(() => parseRelocationMap('{"a": }', 'map.json')).toThrow('map.json: line 1, column 7: expected a value');
  });
});
