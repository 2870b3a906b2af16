import type { Descriptor, Index, Manifest, Platform } from './schemas.js';
import { MediaType } from './mediatypes.js';

/**
 * JSON written byte-for-byte the way Go's `encoding/json` writes the image-spec v1.1 structs
 * (github.com/opencontainers/image-spec/specs-go/v1): struct fields in declaration order,
 * `omitempty` honoured, map keys sorted bytewise (UTF-8), no whitespace, HTML-safe escaping.
 * cnab-to-oci hashes exactly these bytes, so any difference changes the digests.
 */

const HEX = '0123456789abcdef';

/** A Go string literal as `encoding/json` writes it with EscapeHTML on (json.Marshal's default). */
export function goJsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26) {
      switch (c) {
        case 0x22: esc = '\\"'; break;
        case 0x5c: esc = '\\\\'; break;
        // Go 1.22+ writes \b and \f short forms (older Go wrote \u0008 and \u000c).
        case 0x08: esc = '\\b'; break;
        case 0x0c: esc = '\\f'; break;
        case 0x0a: esc = '\\n'; break;
        case 0x0d: esc = '\\r'; break;
        case 0x09: esc = '\\t'; break;
        default: esc = `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`;
      }
    } else if (c === 0x2028 || c === 0x2029) {
      esc = `\\u202${HEX[c & 0xf]}`;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // A Go string cannot hold a lone surrogate: invalid UTF-8 is written as U+FFFD.
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      esc = '\\ufffd';
    }
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return `${out}${s.slice(start)}"`;
}

/** Go's `<` on strings: bytewise over UTF-8, i.e. code point order (not UTF-16 code unit order). */
export function compareGoStrings(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A `map[string]string`: keys sorted bytewise, nil (undefined) as `null`. */
export function goStringMap(m: Record<string, string> | undefined | null): string {
  if (m === undefined || m === null) return 'null';
  const keys = Object.keys(m).sort(compareGoStrings);
  return `{${keys.map((k) => `${goJsonString(k)}:${goJsonString(m[k]!)}`).join(',')}}`;
}

/** A `[]string`: nil as `null`. */
export function goStringSlice(s: readonly string[] | undefined | null): string {
  if (s === undefined || s === null) return 'null';
  return `[${s.map(goJsonString).join(',')}]`;
}

/** Writes struct fields in order; `omitempty` fields are skipped when Go considers them empty. */
class StructWriter {
  private readonly parts: string[] = [];
  field(name: string, json: string): this {
    this.parts.push(`${goJsonString(name)}:${json}`);
    return this;
  }
  string(name: string, value: string | undefined, omitempty: boolean): this {
    if (omitempty && !value) return this;
    return this.field(name, goJsonString(value ?? ''));
  }
  stringMap(name: string, value: Record<string, string> | undefined | null, omitempty: boolean): this {
    if (omitempty && (!value || Object.keys(value).length === 0)) return this;
    return this.field(name, goStringMap(value));
  }
  stringSlice(name: string, value: readonly string[] | undefined | null, omitempty: boolean): this {
    if (omitempty && (!value || value.length === 0)) return this;
    return this.field(name, goStringSlice(value));
  }
  toString(): string {
    return `{${this.parts.join(',')}}`;
  }
}

function goInt(n: number): string {
  if (!Number.isSafeInteger(n)) throw new TypeError(`not an integer: ${n}`);
  return String(n);
}

/** image-spec v1.1 `Platform`. (`features` is from v1.0.2; kept so no field read is lost.) */
export function marshalPlatform(p: Platform): string {
  return new StructWriter()
    .string('architecture', p.architecture, false)
    .string('os', p.os, false)
    .string('os.version', p['os.version'], true)
    .stringSlice('os.features', p['os.features'], true)
    .string('variant', p.variant, true)
    .stringSlice('features', p.features, true)
    .toString();
}

/**
 * image-spec v1.1 `Descriptor`: mediaType, digest, size, urls, annotations, data, platform,
 * artifactType. In v1.1 `mediaType` lost `omitempty`; our descriptors always carry one anyway.
 */
export function marshalDescriptor(d: Descriptor): string {
  const w = new StructWriter()
    .string('mediaType', d.mediaType, false)
    .string('digest', d.digest, false)
    .field('size', goInt(d.size))
    .stringSlice('urls', d.urls, true)
    .stringMap('annotations', d.annotations, true)
    // Go's []byte is base64 on the wire; the schema already holds it as that string.
    .string('data', d.data, true);
  if (d.platform) w.field('platform', marshalPlatform(d.platform));
  return w.string('artifactType', d.artifactType, true).toString();
}

function descriptorSlice(ds: readonly Descriptor[] | null | undefined): string {
  if (ds === undefined || ds === null) return 'null';
  return `[${ds.map(marshalDescriptor).join(',')}]`;
}

/** image-spec v1.1 `Manifest`. `layers` has no omitempty: a nil slice is written `null`. */
export function marshalManifest(m: Manifest): string {
  const w = new StructWriter()
    .field('schemaVersion', goInt(m.schemaVersion))
    .string('mediaType', m.mediaType, true)
    .string('artifactType', m.artifactType, true)
    .field('config', marshalDescriptor(m.config))
    .field('layers', descriptorSlice(m.layers));
  if (m.subject) w.field('subject', marshalDescriptor(m.subject));
  return w.stringMap('annotations', m.annotations, true).toString();
}

function indexWriter(ix: Index, withMediaType: boolean): StructWriter {
  const w = new StructWriter().field('schemaVersion', goInt(ix.schemaVersion));
  if (withMediaType) w.string('mediaType', ix.mediaType, true);
  w.string('artifactType', ix.artifactType, true).field('manifests', descriptorSlice(ix.manifests));
  if (ix.subject) w.field('subject', marshalDescriptor(ix.subject));
  return w.stringMap('annotations', ix.annotations, true);
}

/** image-spec v1.1 `Index`. `manifests` has no omitempty. */
export function marshalIndex(ix: Index): string {
  return indexWriter(ix, true).toString();
}

/**
 * cnab-to-oci's Docker manifest list fallback (remotes/push.go `ociIndexWrapper`): an `Index`
 * embedded in a struct with its own `mediaType` field. Go's field dominance hides the embedded
 * `mediaType` and orders the outer field after every embedded one, so `mediaType` comes last.
 */
export function marshalDockerManifestList(ix: Index): string {
  return indexWriter(ix, false).string('mediaType', MediaType.DockerManifestList, true).toString();
}

/**
 * Docker schema 2 manifest as distribution/v3 `schema2.FromStruct` writes it:
 * `json.MarshalIndent(m, "", "   ")` of {schemaVersion, mediaType, config, layers}.
 */
export function marshalDockerSchema2Manifest(config: Descriptor, layers: readonly Descriptor[]): string {
  const compact = new StructWriter()
    .field('schemaVersion', '2')
    .string('mediaType', MediaType.DockerManifest, true)
    .field('config', marshalDescriptor(config))
    .field('layers', descriptorSlice(layers))
    .toString();
  return goIndent(compact, '', '   ');
}

/** Go's `json.Indent` over compact JSON: empty `{}`/`[]` stay on one line, `": "` after keys. */
export function goIndent(compact: string, prefix: string, indent: string): string {
  let out = '';
  let depth = 0;
  let inString = false;
  let needIndent = false;
  const newline = (): string => `\n${prefix}${indent.repeat(depth)}`;
  for (let i = 0; i < compact.length; i++) {
    const c = compact[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += compact[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (needIndent && c !== ']' && c !== '}') {
      needIndent = false;
      depth++;
      out += newline();
    }
    switch (c) {
      case '"': inString = true; out += c; break;
      case '{': case '[': out += c; needIndent = true; break;
      case ',': out += c + newline(); break;
      case ':': out += ': '; break;
      case '}': case ']':
        if (needIndent) needIndent = false; // empty object or array
        else { depth--; out += newline(); }
        out += c;
        break;
      default: out += c;
    }
  }
  return out;
}
