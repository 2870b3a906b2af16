/**
 * RFC 8785 JSON Canonicalization Scheme (JCS), as cnab-go's `Bundle.Marshal` produces it through
 * github.com/cyberphone/json-canonicalization: no whitespace, object keys sorted by UTF-16 code
 * units, numbers in ECMAScript `Number.prototype.toString` form, strings with the minimal escapes.
 */

const SHORT_ESCAPES: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

export function canonicalString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) {
      out += s.slice(start, i) + (SHORT_ESCAPES[c] ?? `\\u${c.toString(16).padStart(4, '0')}`);
      start = i + 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) {
        // RFC 8785 works on I-JSON: a lone surrogate has no UTF-8 form.
        throw new TypeError(`canonical JSON: string has a lone surrogate at index ${i}`);
      }
      i++;
    }
  }
  return `${out}${s.slice(start)}"`;
}

export function canonicalNumber(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`canonical JSON: ${n} is not a JSON number`);
  // ES6 Number-to-string is exactly what RFC 8785 prescribes; -0 prints as "0".
  return String(n);
}

/** Canonical JSON text of a JSON value. Object properties whose value is `undefined` are skipped. */
export function canonicalize(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean': return value ? 'true' : 'false';
    case 'number': return canonicalNumber(value);
    case 'string': return canonicalString(value);
    case 'object': break;
    default: throw new TypeError(`canonical JSON: cannot encode a ${typeof value}`);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalize(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  // Default sort compares UTF-16 code units, which is the RFC 8785 order.
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${canonicalString(k)}:${canonicalize(obj[k])}`).join(',')}}`;
}

export function canonicalBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalize(value));
}
