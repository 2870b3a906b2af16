import { describe, expect, it } from 'vitest';
import {
  compareGoStrings,
  goIndent,
  goJsonString,
  goStringMap,
  marshalDescriptor,
  marshalDockerManifestList,
  marshalDockerSchema2Manifest,
  marshalIndex,
  marshalManifest,
  marshalPlatform,
} from '../../../src/oci/gojson.js';
import type { Descriptor } from '../../../src/oci/schemas.js';

const D = 'sha256:e91b9dfcbbb3b88bac94726f276b89de46e4460b55f6e6d6f876e666b150ec5b';

describe('goJsonString (encoding/json encodeState.string with escapeHTML)', () => {
  it('escapes <, > and & as \\u003c \\u003e \\u0026 (HTMLEscape is on for json.Marshal)', () => {
    expect(goJsonString('<a href="x">&</a>')).toBe('"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e"');
  });
  it('escapes U+2028 and U+2029 (JSONP safety), keeps other non-ASCII raw', () => {
    expect(goJsonString('a\u2028b\u2029c é 😀')).toBe('"a\\u2028b\\u2029c é 😀"');
  });
  it('uses short escapes for \\n \\r \\t \\b \\f and lowercase \\u00xx for other controls; DEL stays raw', () => {
    expect(goJsonString('\n\r\t\b\f\u0000\u001f\u007f\\')).toBe('"\\n\\r\\t\\b\\f\\u0000\\u001f\u007f\\\\"');
  });
  it('writes a lone surrogate as \\ufffd (Go strings are UTF-8; invalid bytes become U+FFFD)', () => {
    expect(goJsonString('a\ud800b\udc00')).toBe('"a\\ufffdb\\ufffd"');
  });
});

describe('map keys', () => {
  it('sorts bytewise over UTF-8 (Go string <), not by UTF-16 code units', () => {
    // U+E000 is EE 80 80 in UTF-8, U+1F600 is F0 9F 98 80: Go puts U+E000 first,
    // while a UTF-16 sort (D83D < E000) would put the emoji first.
    expect(['\u{1F600}', '\uE000', 'B', 'a'].sort(compareGoStrings)).toEqual(['B', 'a', '\uE000', '\u{1F600}']);
    expect(goStringMap({ b: '1', a: '<' })).toBe('{"a":"\\u003c","b":"1"}');
  });
});

describe('structs', () => {
  const full: Descriptor = {
    artifactType: 'application/x.art',
    platform: { variant: 'v8', os: 'linux', architecture: 'arm64', 'os.features': ['f'], 'os.version': '1' },
    data: 'e30=',
    annotations: { z: '1', a: '2' },
    urls: ['https://x/y'],
    size: 3,
    digest: D,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
  };
  it('Descriptor: mediaType, digest, size, urls, annotations, data, platform, artifactType', () => {
    expect(marshalDescriptor(full)).toBe(
      `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${D}","size":3,"urls":["https://x/y"],` +
        `"annotations":{"a":"2","z":"1"},"data":"e30=","platform":{"architecture":"arm64","os":"linux","os.version":"1",` +
        `"os.features":["f"],"variant":"v8"},"artifactType":"application/x.art"}`,
    );
  });
  it('Descriptor: omitempty drops empty urls and annotations', () => {
    expect(marshalDescriptor({ mediaType: 'm', digest: D, size: 0, urls: [], annotations: {} })).toBe(`{"mediaType":"m","digest":"${D}","size":0}`);
  });
  it('Platform: architecture and os are always written', () => {
    expect(marshalPlatform({ architecture: '', os: '' })).toBe('{"architecture":"","os":""}');
  });
  it('Manifest: layers has no omitempty, nil is null and empty is []', () => {
    const config = { mediaType: 'c', digest: D, size: 1 } as Descriptor;
    expect(marshalManifest({ schemaVersion: 2, config, layers: null })).toBe(`{"schemaVersion":2,"config":{"mediaType":"c","digest":"${D}","size":1},"layers":null}`);
    expect(marshalManifest({ schemaVersion: 2, config, layers: [] })).toBe(`{"schemaVersion":2,"config":{"mediaType":"c","digest":"${D}","size":1},"layers":[]}`);
    expect(marshalManifest({ schemaVersion: 2, mediaType: 'mt', artifactType: 'at', config, layers: undefined, subject: config, annotations: { k: 'v' } })).toBe(
      `{"schemaVersion":2,"mediaType":"mt","artifactType":"at","config":{"mediaType":"c","digest":"${D}","size":1},"layers":null,` +
        `"subject":{"mediaType":"c","digest":"${D}","size":1},"annotations":{"k":"v"}}`,
    );
  });
  it('Index: schemaVersion, mediaType, artifactType, manifests (null when nil), subject, annotations', () => {
    expect(marshalIndex({ schemaVersion: 2, manifests: null })).toBe('{"schemaVersion":2,"manifests":null}');
    expect(marshalIndex({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], annotations: { a: 'b' } })).toBe(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"annotations":{"a":"b"}}',
    );
  });
  it('Docker manifest list fallback: the wrapper mediaType comes last and hides the embedded one', () => {
    expect(marshalDockerManifestList({ schemaVersion: 2, mediaType: 'ignored', manifests: [], annotations: { a: 'b' } })).toBe(
      '{"schemaVersion":2,"manifests":[],"annotations":{"a":"b"},"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"}',
    );
  });
  it('Docker schema2 manifest: MarshalIndent with three spaces, config repeated as layer', () => {
    const config = { mediaType: 'application/vnd.docker.container.image.v1+json', digest: D, size: 498 } as Descriptor;
    expect(marshalDockerSchema2Manifest(config, [config])).toBe(
      [
        '{',
        '   "schemaVersion": 2,',
        '   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",',
        '   "config": {',
        '      "mediaType": "application/vnd.docker.container.image.v1+json",',
        `      "digest": "${D}",`,
        '      "size": 498',
        '   },',
        '   "layers": [',
        '      {',
        '         "mediaType": "application/vnd.docker.container.image.v1+json",',
        `         "digest": "${D}",`,
        '         "size": 498',
        '      }',
        '   ]',
        '}',
      ].join('\n'),
    );
  });
  it('goIndent keeps empty objects and arrays on one line and skips string contents', () => {
    expect(goIndent('{"a":[],"b":{},"c":"x:{,}\\"]"}', '>', '  ')).toBe('{\n>  "a": [],\n>  "b": {},\n>  "c": "x:{,}\\"]"\n>}');
  });
});
