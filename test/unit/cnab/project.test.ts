import { describe, expect, it } from 'vitest';
import { parseBundle } from '../../../src/cnab/bundle.js';
import { canonicalBundleBytes, droppedFields, projectBundle } from '../../../src/cnab/project.js';

const DIG = 'sha256:a59a4e74d9cc89e4e75dfb2cc7ea5c108e4236ba6231b53081a9e2506d1197b6';
const canonical = (json: string): string => Buffer.from(canonicalBundleBytes(parseBundle(json, 'b.json').bundle)).toString('utf8');

const MIN = `"schemaVersion":"v1.0.0","name":"n","version":"1.0.0"`;

describe('cnab-go projection + RFC 8785 (the bundle config blob)', () => {
  it('a rich bundle, field by field', () => {
    const input = `{
      ${MIN},
      "keywords": [],
      "license": "",
      "requiredExtensions": null,
      "extraTop": 1,
      "maintainers": [{"name": "A <a&b>", "extra": 1}],
      "invocationImages": [{"image": "x/inv:1", "imageType": "docker", "size": 10, "contentDigest": "${DIG}", "labels": {}, "unknown": true}],
      "images": {"web": {"image": "x/web:1", "size": 5}, "db": {"image": "x/db:1", "description": "the db", "labels": {"k": "v"}}},
      "actions": {"io.cnab.dry-run": {"title": "Dry", "modifies": false, "stateless": true}, "io.cnab.status": {}},
      "parameters": {"p": {"definition": "d", "destination": {"env": "P"}, "required": false, "applyTo": []}},
      "credentials": {"c": {"path": "/x", "description": ""}},
      "outputs": {"o": {"definition": "d", "path": "/cnab/app/outputs/o", "applyTo": ["install"]}},
      "definitions": {"d": {"type": "integer", "minimum": 0, "maximum": 1.0, "default": null, "anyOf": [{"type": "string"}],
        "properties": {"a": {"type": "string", "x-extra": 1}}, "items": {"x-kept": 1}, "readOnly": false, "examples": []}},
      "custom": {"z": {"n": [1.0, 1e21, -0, 0.1, 12345678901234567890], "s": "<>&\\u2028\\u0001\\u001f\\u007f é 😀"}, "a": null, "e": {}}
    }`;
    expect(canonical(input)).toBe(
      '{' +
        // Action: every field omitempty (false dropped); "title" is not in cnab-go's Action.
        '"actions":{"io.cnab.dry-run":{"stateless":true},"io.cnab.status":{}},' +
        // Credential: description "" dropped by omitempty.
        '"credentials":{"c":{"path":"/x"}},' +
        // custom is map[string]interface{}: kept verbatim, nulls and {} inside included; numbers
        // are float64 (1.0 -> 1, 1e21 -> 1e+21, -0 -> 0, 12345678901234567890 -> ...7000).
        '"custom":{"a":null,"e":{},"z":{"n":[1,1e+21,0,0.1,12345678901234567000],"s":"<>&\u2028\\u0001\\u001f\u007f é 😀"}},' +
        // Schema: default null is a nil interface{} (omitempty); anyOf and x-extra are not Schema
        // fields; items is interface{} (kept as is); readOnly is *bool so false stays; examples [] dropped.
        '"definitions":{"d":{"items":{"x-kept":1},"maximum":1,"minimum":0,"properties":{"a":{"type":"string"}},"readOnly":false,"type":"integer"}},' +
        // Bundle.Description has no omitempty.
        '"description":"",' +
        // Image.Description and BaseImage.ImageType have no omitempty; labels {} dropped.
        '"images":{"db":{"description":"the db","image":"x/db:1","imageType":"","labels":{"k":"v"}},"web":{"description":"","image":"x/web:1","imageType":"","size":5}},' +
        `"invocationImages":[{"contentDigest":"${DIG}","image":"x/inv:1","imageType":"docker","size":10}],` +
        // keywords [] and license "" and requiredExtensions null: omitempty.
        '"maintainers":[{"name":"A <a&b>"}],' +
        '"name":"n",' +
        '"outputs":{"o":{"applyTo":["install"],"definition":"d","path":"/cnab/app/outputs/o"}},' +
        // Parameter: required false and applyTo [] dropped (omitempty).
        '"parameters":{"p":{"definition":"d","destination":{"env":"P"}}},' +
        '"schemaVersion":"v1.0.0","version":"1.0.0"}',
    );
    expect(droppedFields(parseBundle(input, 'b.json').bundle).sort()).toEqual(
      [
        'actions["io.cnab.dry-run"].title',
        'definitions.d.anyOf',
        'definitions.d.properties.a.x-extra',
        'extraTop',
        'invocationImages[0].unknown',
        'maintainers[0].extra',
      ].sort(),
    );
  });

  it('non-omitempty fields get Go zero values: destination null, output path "", empty invocationImages []', () => {
    const b = parseBundle(`{${MIN}, "invocationImages": [], "parameters": {"p": {"definition": "d", "destination": {}}}}`, 'b.json').bundle;
    // Make destination absent after validation (a programmatic bundle): *Location without omitempty -> null.
    delete (b.parameters!.p as Record<string, unknown>).destination;
    expect(Buffer.from(canonicalBundleBytes(b)).toString()).toBe(
      '{"description":"","invocationImages":[],"name":"n","parameters":{"p":{"definition":"d","destination":null}},"schemaVersion":"v1.0.0","version":"1.0.0"}',
    );
    const noImages = { ...b, invocationImages: undefined } as unknown as typeof b;
    // []InvocationImage without omitempty: a nil slice is null.
    expect(projectBundle(noImages).value.invocationImages).toBeNull();
  });

  it('empty destination {} stays an object (pointer is non-nil)', () => {
    expect(canonical(`{${MIN}, "invocationImages": [], "parameters": {"p": {"definition": "d", "destination": {}}}}`)).toContain('"destination":{}');
  });

  it('custom {} and null are dropped (omitempty on the map); nested custom data kept exactly', () => {
    expect(canonical(`{${MIN}, "invocationImages": [], "custom": {}}`)).not.toContain('custom');
    expect(canonical(`{${MIN}, "invocationImages": [], "custom": null}`)).not.toContain('custom');
    expect(canonical(`{${MIN}, "invocationImages": [], "custom": {"x": {"b": [{"d": false, "c": [null, "s", 2.50]}], "a": {"\\u00e9": 1, "z": 0}}}}`)).toContain(
      '"custom":{"x":{"a":{"z":0,"é":1},"b":[{"c":[null,"s",2.5],"d":false}]}}',
    );
  });

  it('strings: <>& and U+2028 raw, controls escaped, lone surrogates become U+FFFD as in Go', () => {
    expect(canonical(`{"schemaVersion":"v1","name":"a<b>&c\\u2028\\n\\t\\u0000\\ud800x","version":"1.0.0","invocationImages":[]}`)).toBe(
      '{"description":"","invocationImages":[],"name":"a<b>&c\u2028\\n\\t\\u0000\uFFFDx","schemaVersion":"v1","version":"1.0.0"}',
    );
  });

  it('keys are matched case-insensitively like encoding/json (EMAIL fills email)', () => {
    expect(canonical(`{${MIN}, "invocationImages": [], "maintainers": [{"name": "a", "EMAIL": "e@x"}]}`)).toContain('"maintainers":[{"email":"e@x","name":"a"}]');
  });

  it('Schema pointers keep zero values, pattern is kept, nested schemas projected', () => {
    expect(
      canonical(`{${MIN}, "invocationImages": [], "definitions": {"s": {"minLength": 0, "uniqueItems": false, "pattern": "^a+$", "const": null,
        "allOf": [{"title": "t", "bogus": 1}], "not": {"type": "null"}, "oneOf": [{"type": "string"}], "additionalProperties": false, "maxItems": 3}}}`),
    ).toContain(
      // oneOf is a *Schema in cnab-go (it could not read an array): we keep the array as written.
      '"definitions":{"s":{"additionalProperties":false,"allOf":[{"title":"t"}],"minLength":0,"not":{"type":"null"},"oneOf":[{"type":"string"}],"pattern":"^a+$","uniqueItems":false}}',
    );
  });
});
