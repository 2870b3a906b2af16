import { InputError } from '../oci/errors.js';

/**
 * Parse a user's JSON file with one-line errors that name the file and, for syntax errors, the
 * line and column (V8's own messages only sometimes carry a position).
 */
export function parseJsonText(input: Uint8Array | string, sourceName: string): unknown {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) {
    throw new InputError(`${sourceName}: line 1, column 1: starts with a byte order mark, which JSON does not allow`);
  }
  try {
    return JSON.parse(text);
  } catch {
    const { offset, message } = locateSyntaxError(text);
    const { line, column } = lineColumn(text, offset);
    throw new InputError(`${sourceName}: line ${line}, column ${column}: ${message}`);
  }
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

class SyntaxAt extends Error {
  constructor(readonly offset: number, message: string) {
    super(message);
  }
}

/** A small RFC 8259 scanner, run only after JSON.parse failed, to say where and why. */
export function locateSyntaxError(text: string): { offset: number; message: string } {
  let i = 0;
  const describe = (): string => (i >= text.length ? 'end of input' : JSON.stringify(text[i]));
  const fail = (what: string): never => {
    throw new SyntaxAt(i, `${what}, found ${describe()}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const string = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) { i++; return; }
      if (c < 0x20) fail('control character in string (escape it)');
      if (c === 0x5c) {
        i++;
        const e = text[i];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('invalid \\u escape');
          i += 5;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
        else fail('invalid escape');
      } else i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a double-quoted property name');
        string();
        ws();
        if (text[i] !== ':') fail("expected ':' after property name");
        i++;
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (m && m[0] !== '-' && m[0].length > 0) { i += m[0].length; return; }
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) { i += lit.length; return; }
    }
    fail('expected a value');
  };
  try {
    value();
    ws();
    if (i < text.length) fail('unexpected text after the JSON value');
    return { offset: 0, message: 'invalid JSON' };
  } catch (err) {
    if (err instanceof SyntaxAt) return { offset: err.offset, message: err.message };
    throw err;
  }
}

/** `invocationImages[0].image`, `images.web.size`, `actions["io.cnab.status"]`: a readable JSON path. */
export function formatJsonPath(path: ReadonlyArray<string | number | symbol>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z0-9_$-]+$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out || '(root)';
}
