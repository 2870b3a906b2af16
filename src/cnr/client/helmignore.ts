import { InputError } from '../../oci/errors.js';

/**
 * `.helmignore` rules, the subset packages need. Syntax is Helm's (pkg/ignore):
 *
 * - one pattern a line; blank lines and lines starting with `#` are skipped; leading and
 *   trailing spaces are trimmed (no inline comments, no escaped spaces);
 * - globs are Go's `filepath.Match`: `*` and `?` never match `/`, `[a-z]`, `[^a-z]` (and
 *   fnmatch's `[!a-z]`), `\` escapes the next character;
 * - a pattern without `/` is matched against the base name (at any depth), a pattern with a `/`
 *   (or a leading `/`, which is dropped) against the whole path from the chart root;
 * - a trailing `/` matches directories only; an ignored directory is skipped with all it holds;
 * - `**` is refused, as Helm refuses it (`helm package` would fail on such a chart).
 *
 * Negation differs from Helm on purpose: Helm stops at the first rule that decides and treats
 * `!pat` as "ignore whatever does not match pat", so any `!` line makes it drop `Chart.yaml`
 * itself. Here, as in .gitignore and as the appr CLI did (pathspec's gitwildmatch), the last
 * matching line wins and `!pat` puts back what an earlier line ignored (not inside an ignored
 * directory: that one is never walked). Helm's built-in `templates/.?*` rule always applies last.
 */
export interface IgnoreRules {
  /** `path` is relative to the chart root, `/`-separated, without a trailing `/`. */
  ignores(path: string, isDirectory: boolean): boolean;
}

interface Rule {
  negate: boolean;
  directoryOnly: boolean;
  /** Match the base name only (the pattern had no `/`). */
  baseName: boolean;
  regex: RegExp;
}

export const HELM_IGNORE_FILE = '.helmignore';
/** Helm's default: dot files directly in `templates/` are never part of a chart. */
const HELM_DEFAULT = compileRule('templates/.?*', 'built-in rule')!;

export function parseHelmIgnore(text: string, file: string): IgnoreRules {
  const rules: Rule[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const rule = compileRule(line, `${file}: line ${i + 1}`);
    if (rule) rules.push(rule);
  });
  return {
    ignores(path, isDirectory) {
      if (path === '') return false;
      if (matches(HELM_DEFAULT, path, isDirectory)) return true;
      let ignored = false;
      for (const rule of rules) if (matches(rule, path, isDirectory)) ignored = !rule.negate;
      return ignored;
    },
  };
}

/** Nothing ignored: packages of other media types take the directory as it is. */
export const NO_RULES: IgnoreRules = { ignores: () => false };

function matches(rule: Rule, path: string, isDirectory: boolean): boolean {
  if (rule.directoryOnly && !isDirectory) return false;
  return rule.regex.test(rule.baseName ? path.slice(path.lastIndexOf('/') + 1) : path);
}

function compileRule(line: string, where: string): Rule | undefined {
  let pattern = line.trim();
  if (pattern === '' || pattern.startsWith('#')) return undefined;
  if (pattern.includes('**')) throw new InputError(`${where}: ${JSON.stringify(pattern)}: "**" is not supported (Helm refuses it too)`);
  const negate = pattern.startsWith('!');
  if (negate) pattern = pattern.slice(1);
  const directoryOnly = pattern.endsWith('/');
  if (directoryOnly) pattern = pattern.replace(/\/+$/, '');
  const baseName = !pattern.includes('/');
  if (pattern.startsWith('/')) pattern = pattern.replace(/^\/+/, '');
  if (pattern === '') throw new InputError(`${where}: ${JSON.stringify(line.trim())}: empty pattern`);
  return { negate, directoryOnly, baseName, regex: globRegex(pattern, where) };
}

/** Go's filepath.Match syntax as an anchored regular expression; `/` is never matched by a wildcard. */
function globRegex(glob: string, where: string): RegExp {
  const bad = (why: string) => new InputError(`${where}: ${JSON.stringify(glob)}: bad pattern (${why})`);
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\') {
      const next = glob[++i];
      if (next === undefined) throw bad('trailing "\\"');
      out += escapeRegex(next);
    } else if (c === '[') {
      const end = classEnd(glob, i);
      if (end < 0) throw bad('unterminated "["');
      out += classRegex(glob.slice(i + 1, end), bad);
      i = end;
    } else out += escapeRegex(c);
  }
  return new RegExp(`^${out}$`, 'u');
}

/** Index of the `]` closing the class opened at `start`, skipping escaped characters; -1 when none. */
function classEnd(glob: string, start: number): number {
  for (let i = start + 1; i < glob.length; i++) {
    if (glob[i] === '\\') i++;
    else if (glob[i] === ']') return i;
  }
  return -1;
}

function classRegex(body: string, bad: (why: string) => Error): string {
  let negated = false;
  let rest = body;
  if (rest.startsWith('^') || rest.startsWith('!')) {
    negated = true;
    rest = rest.slice(1);
  }
  const chars: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    let c = rest[i]!;
    if (c === '\\') c = rest[++i] ?? '';
    if (c === '' || c === '/') throw bad(c === '' ? 'trailing "\\" in a class' : '"/" in a class');
    if (rest[i + 1] === '-' && i + 2 < rest.length) {
      let hi = rest[i + 2]!;
      i += 2;
      if (hi === '\\') hi = rest[++i] ?? '';
      if (hi === '' || hi < c) throw bad(`bad range ${c}-${hi}`);
      chars.push(`${escapeClass(c)}-${escapeClass(hi)}`);
    } else chars.push(escapeClass(c));
  }
  if (chars.length === 0) throw bad('empty class');
  // A negated class never matches `/` either: wildcards stay within one path component.
  return negated ? `[^/${chars.join('')}]` : `[${chars.join('')}]`;
}

function escapeRegex(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function escapeClass(c: string): string {
  return c.replace(/[\\\]^[-]/g, '\\$&');
}
