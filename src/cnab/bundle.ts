import { z } from 'zod';
import { InputError } from '../oci/errors.js';
import { compareGoStrings } from '../oci/gojson.js';
import { formatJsonPath, parseJsonText } from './json-text.js';

/**
 * The CNAB bundle (CNAB Core 1.x, bundle.schema.json + definitions.schema.json) as a zod schema.
 * Objects are loose: unknown fields are kept so callers can warn before the cnab-go projection
 * drops them. Maps and lists also accept `null`, which Go reads as "absent" and which real
 * bundles written by Go tools contain (`"images": null`).
 */

const stringMap = z.record(z.string(), z.string());
const stringList = z.array(z.string());

/** A JSON Schema (draft-07) used as a CNAB definition; only keywords cnab-go types strictly are checked. */
export type Definition = { [keyword: string]: unknown };
export const DefinitionSchema: z.ZodType<Definition> = z.lazy(() => {
  const sub = z.union([z.boolean(), DefinitionSchema]);
  const subMap = z.record(z.string(), sub);
  const schemaArray = z.array(sub).min(1);
  const nonNegInt = z.int().nonnegative();
  return z.looseObject({
    $schema: z.string().optional(),
    $comment: z.string().optional(),
    $id: z.string().optional(),
    $ref: z.string().optional(),
    title: z.string().optional(),
    description: z.string().optional(),
    readOnly: z.boolean().optional(),
    writeOnly: z.boolean().optional(),
    examples: z.array(z.unknown()).optional(),
    multipleOf: z.number().positive().optional(),
    // The CNAB meta-schema says integer; cnab-go holds them as float64, so any number is accepted.
    maximum: z.number().optional(),
    exclusiveMaximum: z.number().optional(),
    minimum: z.number().optional(),
    exclusiveMinimum: z.number().optional(),
    maxLength: nonNegInt.optional(),
    minLength: nonNegInt.optional(),
    pattern: z.string().optional(),
    additionalItems: sub.optional(),
    items: z.union([sub, schemaArray]).optional(),
    maxItems: nonNegInt.optional(),
    minItems: nonNegInt.optional(),
    uniqueItems: z.boolean().optional(),
    contains: sub.optional(),
    maxProperties: nonNegInt.optional(),
    minProperties: nonNegInt.optional(),
    required: stringList.optional(),
    additionalProperties: sub.optional(),
    definitions: subMap.optional(),
    properties: subMap.optional(),
    patternProperties: subMap.optional(),
    dependencies: z.record(z.string(), z.union([sub, stringList])).optional(),
    propertyNames: sub.optional(),
    enum: z.array(z.unknown()).min(1).optional(),
    // The meta-schema's simpleTypes omit "number"; cnab-go accepts it, so any type name is allowed.
    type: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
    format: z.string().optional(),
    contentMediaType: z.string().optional(),
    contentEncoding: z.string().optional(),
    if: sub.optional(),
    then: sub.optional(),
    else: sub.optional(),
    allOf: schemaArray.optional(),
    anyOf: schemaArray.optional(),
    oneOf: schemaArray.optional(),
    not: sub.optional(),
  });
});

const baseImageShape = {
  image: z.string(),
  imageType: z.string().optional(),
  contentDigest: z.string().optional(),
  size: z.int().nonnegative().optional(),
  labels: stringMap.nullable().optional(),
  mediaType: z.string().optional(),
};
export const InvocationImageSchema = z.looseObject(baseImageShape);
export const ImageSchema = z.looseObject({ ...baseImageShape, description: z.string().optional() });
export type InvocationImage = z.infer<typeof InvocationImageSchema>;
export type Image = z.infer<typeof ImageSchema>;
/** The fields every image of a bundle has (cnab-go `BaseImage`). */
export type BaseImage = InvocationImage;

const LocationSchema = z.looseObject({ env: z.string().optional(), path: z.string().optional() });

export const MaintainerSchema = z.looseObject({ name: z.string(), email: z.string().optional(), url: z.string().optional() });
export const ActionSchema = z.looseObject({
  title: z.string().optional(),
  description: z.string().optional(),
  modifies: z.boolean().optional(),
  stateless: z.boolean().optional(),
});
export const ParameterSchema = z.looseObject({
  definition: z.string(),
  // Required; null is what cnab-go writes for a missing one (nil *Location), so we read it back.
  destination: LocationSchema.nullable(),
  description: z.string().optional(),
  applyTo: stringList.nullable().optional(),
  required: z.boolean().optional(),
});
export const CredentialSchema = z.looseObject({
  env: z.string().optional(),
  path: z.string().optional(),
  description: z.string().optional(),
  applyTo: stringList.nullable().optional(),
  required: z.boolean().optional(),
});
export const OutputSchema = z.looseObject({
  definition: z.string(),
  path: z.string().regex(/^\/cnab\/app\/outputs\/.+$/),
  description: z.string().optional(),
  applyTo: stringList.nullable().optional(),
});

/** The spec's version pattern, unanchored as in bundle.schema.json (so "latest" fails). */
const VERSION_PATTERN = /v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?(\+([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?/;

const bundleShape = {
  schemaVersion: z.string(),
  name: z.string(),
  version: z.string().regex(VERSION_PATTERN),
  description: z.string().optional(),
  keywords: stringList.nullable().optional(),
  maintainers: z.array(MaintainerSchema).nullable().optional(),
  invocationImages: z.array(InvocationImageSchema),
  images: z.record(z.string(), ImageSchema).nullable().optional(),
  actions: z.record(z.string(), ActionSchema).nullable().optional(),
  parameters: z.record(z.string(), ParameterSchema).nullable().optional(),
  credentials: z.record(z.string(), CredentialSchema).nullable().optional(),
  outputs: z.record(z.string(), OutputSchema).nullable().optional(),
  definitions: z.record(z.string(), z.union([z.boolean(), DefinitionSchema])).nullable().optional(),
  license: z.string().optional(),
  requiredExtensions: stringList.nullable().optional(),
  custom: z.record(z.string(), z.unknown()).nullable().optional(),
};
export const BundleSchema = z.looseObject(bundleShape);
export type Bundle = z.infer<typeof BundleSchema>;

/** Top-level fields the CNAB bundle schema defines (it forbids any other). */
export const BUNDLE_FIELDS: ReadonlySet<string> = new Set(Object.keys(bundleShape));

export interface ParsedBundle {
  bundle: Bundle;
  /** Top-level fields that are not part of CNAB (bundle.schema.json has additionalProperties: false). */
  unknownFields: string[];
}

/** Parse and validate a bundle.json. Throws `InputError` naming the file and the first bad field. */
export function parseBundle(input: Uint8Array | string, sourceName: string): ParsedBundle {
  const json = parseJsonText(input, sourceName);
  return validateBundle(json, sourceName);
}

/** Validate an already-parsed JSON value as a bundle. */
export function validateBundle(json: unknown, sourceName: string): ParsedBundle {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InputError(`${sourceName}: expected a JSON object, got ${jsonTypeOf(json)}`);
  }
  const shape = checkJsonShape(json);
  if (shape) throw new InputError(`${sourceName}: ${shape}`);
  const badNumber = findNonFiniteNumber(json, []);
  if (badNumber) {
    // Go's float64 cannot hold it, so cnab-go refuses the bundle.
    throw new InputError(`${sourceName}: ${formatJsonPath(badNumber)}: number is out of range for a 64-bit float`);
  }
  const result = BundleSchema.safeParse(json);
  if (!result.success) {
    const issue = deepestIssue(result.error.issues[0]!, []);
    throw new InputError(`${sourceName}: ${formatJsonPath(issue.path)}: ${issueMessage(issue, json)}`);
  }
  const unknownFields = Object.keys(json).filter((k) => !BUNDLE_FIELDS.has(k));
  return { bundle: result.data, unknownFields };
}

type Issue = z.core.$ZodIssue;
type PathSeg = PropertyKey;

/** For unions, report the branch that got furthest into the value rather than "invalid input". */
function deepestIssue(issue: Issue, prefix: PathSeg[]): Issue & { path: PathSeg[] } {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    let best: (Issue & { path: PathSeg[] }) | undefined;
    for (const branch of issue.errors) {
      if (!branch[0]) continue;
      const candidate = deepestIssue(branch[0], path);
      if (!best || candidate.path.length > best.path.length) best = candidate;
    }
    if (best && best.path.length > path.length) return best;
  }
  return { ...issue, path };
}

function valueAt(root: unknown, path: readonly PathSeg[]): unknown {
  let v = root;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function jsonTypeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** zod's type names in JSON's words. */
const EXPECTED_NAMES: Record<string, string> = { int: 'integer', record: 'object' };

function issueMessage(issue: Issue & { path: PathSeg[] }, root: unknown): string {
  const value = valueAt(root, issue.path);
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return `is required${typoHint(valueAt(root, issue.path.slice(0, -1)), issue.path.at(-1))}`;
      return `expected ${EXPECTED_NAMES[issue.expected] ?? issue.expected}, got ${jsonTypeOf(value)}`;
    case 'invalid_union':
      // The only unions in the schema are in definitions: a sub-schema, or `type`.
      return `expected ${issue.path.at(-1) === 'type' ? 'a type name or a list of them' : 'a JSON Schema (object or boolean)'}, got ${jsonTypeOf(value)}`;
    case 'too_small':
      if (issue.origin === 'array') return `must have at least ${issue.minimum} item(s)`;
      return `must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    case 'too_big':
      return `must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    case 'invalid_format':
      return `${JSON.stringify(value)} does not match the pattern ${'pattern' in issue ? String(issue.pattern) : issue.format}`;
    default:
      return issue.message;
  }
}

/** ` (found "invocationImage": a typo?)` when the object has a key one or two edits from the missing one. */
function typoHint(parent: unknown, missing: PathSeg | undefined): string {
  if (typeof missing !== 'string' || typeof parent !== 'object' || parent === null || Array.isArray(parent)) return '';
  const near = Object.keys(parent).find((k) => k !== missing && editDistance(k.toLowerCase(), missing.toLowerCase()) <= 2);
  return near === undefined ? '' : ` (found ${JSON.stringify(near)}: a typo?)`;
}

/** Levenshtein distance, for field names (short strings). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** Deeper than this is refused: far beyond any real bundle, and well within what the recursive steps after it (validation, canonical JSON) can take. */
export const MAX_JSON_DEPTH = 1000;

/** Refuse nesting deeper than MAX_JSON_DEPTH, walking without recursion; returns what is wrong, or undefined. */
function checkJsonShape(root: unknown): string | undefined {
  const stack: Array<{ value: unknown; depth: number; path: () => PathSeg[] }> = [{ value: root, depth: 0, path: () => [] }];
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH) {
      const text = formatJsonPath(path());
      return `${text.length > 80 ? `${text.slice(0, 60)}...` : text}: nested deeper than ${MAX_JSON_DEPTH} levels`;
    }
    // Paths are built lazily: only the one at fault is ever materialised.
    if (Array.isArray(value)) value.forEach((child, i) => stack.push({ value: child, depth: depth + 1, path: () => [...path(), i] }));
    else for (const [k, child] of Object.entries(value)) stack.push({ value: child, depth: depth + 1, path: () => [...path(), k] });
  }
  return undefined;
}

function findNonFiniteNumber(v: unknown, path: PathSeg[]): PathSeg[] | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : path;
  if (typeof v !== 'object' || v === null) return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const found = findNonFiniteNumber(v[i], [...path, i]);
      if (found) return found;
    }
    return undefined;
  }
  for (const [k, child] of Object.entries(v)) {
    const found = findNonFiniteNumber(child, [...path, k]);
    if (found) return found;
  }
  return undefined;
}
