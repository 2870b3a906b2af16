import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../../src/cnab/canonical-json.js';

// Expected values follow RFC 8785 and cyberphone's Go canonicalizer (which cnab-go uses):
// numbers go through strconv.ParseFloat then ES6 Number-to-string; strings are re-escaped minimally.
describe('RFC 8785 canonical JSON', () => {
  it('numbers: ES6 Number.prototype.toString of the float64', () => {
    expect(canonicalize([1.0, 1e21, 1e20, -0, 0.1, 1e-7, 0.000001, 5e-324, 1.7976931348623157e308, 12345678901234567890, 9007199254740993, 333333333.3333333])).toBe(
      '[1,1e+21,100000000000000000000,0,0.1,1e-7,0.000001,5e-324,1.7976931348623157e+308,12345678901234567000,9007199254740992,333333333.3333333]',
    );
  });
  it('refuses values JSON cannot carry', () => {
    expect(() => canonicalize(NaN)).toThrow();
    expect(() => canonicalize(Infinity)).toThrow();
    expect(() => canonicalize('\ud800')).toThrow(/lone surrogate/);
    expect(() => canonicalize(1n)).toThrow();
  });
  it('strings: only " \\ and controls are escaped; <>&, U+2028, DEL and non-ASCII stay raw', () => {
    expect(canonicalize('"\\\b\f\n\r\t\u0000\u001f\u007f<>&\u2028é😀')).toBe('"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\u007f<>&\u2028é😀"');
  });
  it('object keys sorted by UTF-16 code units (emoji D83D before U+E000), recursively, undefined skipped', () => {
    expect(canonicalize({ '\uE000': 1, '\u{1F600}': 2, b: { d: [], c: {} }, a: null, B: true, u: undefined })).toBe(
      '{"B":true,"a":null,"b":{"c":{},"d":[]},"😀":2,"\uE000":1}',
    );
  });
  it('RFC 8785 section 3.2.2 sample', () => {
    const input = JSON.parse('{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}');
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });
});
