import type { Bundle } from './bundle.js';
import { canonicalBytes } from './canonical-json.js';
import { formatJsonPath } from './json-text.js';

/**
 * The cnab-go projection: what `json.Unmarshal` into `bundle.Bundle` followed by `Bundle.Marshal`
 * (json.Marshal, then RFC 8785) keeps. Mirrors the Go structs of cnab-go bundle/bundle.go,
 * parameters.go, credentials.go, outputs.go and bundle/definition/schema.go:
 * - fields the structs do not declare are dropped, at every level (not inside interface{} values);
 * - fields without `omitempty` are always written, with Go's zero value when absent
 *   ("" for strings, null for nil pointers, slices and maps);
 * - `omitempty` drops "", false, 0, nil, and empty slices and maps (but never a struct value);
 * - JSON null into a non-pointer field leaves its zero value;
 * - interface{} values (custom, default, enum, ...) are kept as they are: Go reads their numbers
 *   as float64, which is what a JavaScript number already is;
 * - strings cannot hold lone UTF-16 surrogates in Go: encoding/json reads them as U+FFFD.
 */

type GoType =
  | { k: 'string' }
  | { k: 'bool' }
  | { k: 'number' } // uint64/int/float64: all reach us as a JSON number already validated
  | { k: 'any' } // interface{}
  | { k: 'struct'; fields: readonly GoField[] }
  | { k: 'ptr'; elem: GoType }
  | { k: 'slice'; elem: GoType }
  | { k: 'map'; elem: GoType };

interface GoField {
  json: string;
  type: GoType;
  omitempty: boolean;
}

const STRING: GoType = { k: 'string' };
const BOOL: GoType = { k: 'bool' };
const NUMBER: GoType = { k: 'number' };
const ANY: GoType = { k: 'any' };
const ptr = (elem: GoType): GoType => ({ k: 'ptr', elem });
const slice = (elem: GoType): GoType => ({ k: 'slice', elem });
const map = (elem: GoType): GoType => ({ k: 'map', elem });
const struct = (fields: readonly GoField[]): GoType & { k: 'struct' } => ({ k: 'struct', fields });
const f = (json: string, type: GoType): GoField => ({ json, type, omitempty: false });
const o = (json: string, type: GoType): GoField => ({ json, type, omitempty: true });

// bundle.BaseImage
const BASE_IMAGE: GoField[] = [
  f('imageType', STRING),
  f('image', STRING),
  o('contentDigest', STRING),
  o('size', NUMBER),
  o('labels', map(STRING)),
  o('mediaType', STRING),
];
// bundle.Image embeds BaseImage and adds `description` WITHOUT omitempty.
const IMAGE = struct([...BASE_IMAGE, f('description', STRING)]);
const INVOCATION_IMAGE = struct(BASE_IMAGE);
const MAINTAINER = struct([f('name', STRING), o('email', STRING), o('url', STRING)]);
const ACTION = struct([o('modifies', BOOL), o('stateless', BOOL), o('description', STRING)]);
const LOCATION_FIELDS: GoField[] = [o('path', STRING), o('env', STRING)];
const LOCATION = struct(LOCATION_FIELDS);
const PARAMETER = struct([
  f('definition', STRING),
  o('applyTo', slice(STRING)),
  o('description', STRING),
  f('destination', ptr(LOCATION)), // *Location without omitempty: null when absent
  o('required', BOOL),
]);
// bundle.Credential embeds Location.
const CREDENTIAL = struct([...LOCATION_FIELDS, o('description', STRING), o('required', BOOL), o('applyTo', slice(STRING))]);
const OUTPUT = struct([f('definition', STRING), o('applyTo', slice(STRING)), o('description', STRING), f('path', STRING)]);

// definition.Schema: every field has omitempty. It has no anyOf, maxItems or maxProperties
// (cnab-go drops them), and `oneOf` is a single *Schema there.
const SCHEMA_FIELDS: GoField[] = [];
const SCHEMA = struct(SCHEMA_FIELDS);
const SCHEMA_PTR = ptr(SCHEMA);
SCHEMA_FIELDS.push(
  o('$schema', STRING),
  o('$comment', STRING),
  o('$id', STRING),
  o('$ref', STRING),
  o('additionalItems', ANY),
  o('additionalProperties', ANY),
  o('allOf', slice(SCHEMA_PTR)),
  o('const', ANY),
  o('contains', SCHEMA_PTR),
  o('contentEncoding', STRING),
  o('contentMediaType', STRING),
  o('default', ANY),
  o('definitions', map(SCHEMA_PTR)),
  o('dependencies', map(ANY)),
  o('description', STRING),
  o('else', SCHEMA_PTR),
  o('enum', slice(ANY)),
  o('examples', slice(ANY)),
  o('exclusiveMaximum', ptr(NUMBER)),
  o('exclusiveMinimum', ptr(NUMBER)),
  o('format', STRING),
  o('if', SCHEMA_PTR),
  o('items', ANY),
  o('maximum', ptr(NUMBER)),
  o('maxLength', ptr(NUMBER)),
  o('minItems', ptr(NUMBER)),
  o('minLength', ptr(NUMBER)),
  o('minProperties', ptr(NUMBER)),
  o('minimum', ptr(NUMBER)),
  o('multipleOf', ptr(NUMBER)),
  o('not', SCHEMA_PTR),
  o('oneOf', SCHEMA_PTR),
  o('pattern', ptr(STRING)), // *Regexp, written back as its source text
  o('patternProperties', map(SCHEMA_PTR)),
  o('properties', map(SCHEMA_PTR)),
  o('propertyNames', SCHEMA_PTR),
  o('readOnly', ptr(BOOL)),
  o('required', slice(STRING)),
  o('then', SCHEMA_PTR),
  o('title', STRING),
  o('type', ANY),
  o('uniqueItems', ptr(BOOL)),
  o('writeOnly', ptr(BOOL)),
);

// bundle.Bundle
const BUNDLE = struct([
  f('schemaVersion', STRING),
  f('name', STRING),
  f('version', STRING),
  f('description', STRING),
  o('keywords', slice(STRING)),
  o('maintainers', slice(MAINTAINER)),
  f('invocationImages', slice(INVOCATION_IMAGE)),
  o('images', map(IMAGE)),
  o('actions', map(ACTION)),
  o('parameters', map(PARAMETER)),
  o('credentials', map(CREDENTIAL)),
  o('outputs', map(OUTPUT)),
  o('definitions', map(SCHEMA_PTR)),
  o('license', STRING),
  o('requiredExtensions', slice(STRING)),
  o('custom', map(ANY)),
]);

type Path = Array<string | number>;

/** Go strings are UTF-8: encoding/json turns unpaired surrogates into U+FFFD. */
export function goString(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** interface{}: kept as is (strings made valid UTF-8). */
function goAny(v: unknown): unknown {
  if (typeof v === 'string') return goString(v);
  if (Array.isArray(v)) return v.map(goAny);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, child] of Object.entries(v)) if (child !== undefined) out[goString(k)] = goAny(child);
    return out;
  }
  return v;
}

function isEmpty(v: unknown, t: GoType): boolean {
  switch (t.k) {
    case 'string': return v === '';
    case 'bool': return v === false;
    case 'number': return v === 0;
    case 'slice': return v === null || (Array.isArray(v) && v.length === 0);
    case 'map': return v === null || (isPlainObject(v) && Object.keys(v).length === 0);
    case 'ptr': case 'any': return v === null;
    case 'struct': return false;
  }
}

/** Go decode-then-encode of one value of type `t`. `undefined` and `null` both give the zero value. */
function project(v: unknown, t: GoType, path: Path, dropped: string[]): unknown {
  const absent = v === undefined || v === null;
  switch (t.k) {
    case 'string': return absent ? '' : typeof v === 'string' ? goString(v) : goAny(v);
    case 'bool': return absent ? false : v;
    case 'number': return absent ? 0 : v;
    case 'any': return absent ? null : goAny(v);
    case 'ptr': return absent ? null : project(v, t.elem, path, dropped);
    case 'slice':
      if (absent) return null;
      return Array.isArray(v) ? v.map((e, i) => project(e, t.elem, [...path, i], dropped)) : goAny(v);
    case 'map': {
      if (absent) return null;
      if (!isPlainObject(v)) return goAny(v);
      const out: Record<string, unknown> = {};
      for (const [k, e] of Object.entries(v)) if (e !== undefined) out[goString(k)] = project(e, t.elem, [...path, k], dropped);
      return out;
    }
    case 'struct':
      // cnab-go cannot read a non-object here (a boolean JSON Schema, an array `oneOf`);
      // we keep the value rather than refuse a bundle the CNAB schema allows.
      if (!absent && !isPlainObject(v)) return goAny(v);
      return projectStruct(absent ? {} : (v as Record<string, unknown>), t.fields, path, dropped);
  }
}

function projectStruct(v: Record<string, unknown>, fields: readonly GoField[], path: Path, dropped: string[]): Record<string, unknown> {
  const keys = Object.keys(v).filter((k) => v[k] !== undefined);
  const used = new Set<string>();
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    // encoding/json matches keys exactly first, then case-insensitively.
    const key = keys.includes(field.json) ? field.json : keys.filter((k) => k.toLowerCase() === field.json.toLowerCase()).at(-1);
    if (key !== undefined) used.add(key);
    const value = project(key === undefined ? undefined : v[key], field.type, [...path, field.json], dropped);
    if (field.omitempty && isEmpty(value, field.type)) continue;
    out[field.json] = value;
  }
  for (const k of keys) if (!used.has(k)) dropped.push(formatJsonPath([...path, k]));
  return out;
}

export interface Projection {
  /** The bundle as cnab-go holds it, ready for canonical JSON. */
  value: Record<string, unknown>;
  /** JSON paths of fields cnab-go's structs do not have (deepest first within an object). */
  dropped: string[];
}

export function projectBundle(bundle: Bundle): Projection {
  const dropped: string[] = [];
  const value = projectStruct(bundle as Record<string, unknown>, BUNDLE.fields, [], dropped);
  return { value, dropped };
}

/** The bundle config blob cnab-to-oci pushes: cnab-go `Bundle.Marshal()` of the bundle. */
export function canonicalBundleBytes(bundle: Bundle): Uint8Array {
  return canonicalBytes(projectBundle(bundle).value);
}

/** Every field (JSON path) the cnab-go projection drops, e.g. `actions["io.cnab.x"].title`. */
export function droppedFields(bundle: Bundle): string[] {
  return projectBundle(bundle).dropped;
}

/** The Go struct value of a maintainer as cnab-go holds it (for the index annotations). */
export function projectMaintainers(bundle: Bundle): Array<{ name: string; email?: string; url?: string }> | null {
  return project(bundle.maintainers, slice(MAINTAINER), ['maintainers'], []) as Array<{ name: string; email?: string; url?: string }> | null;
}
