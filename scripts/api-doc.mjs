// The README's API section, made from src/index.ts: every name the library exports, grouped by
// the module it comes from. `node scripts/api-doc.mjs` prints it; `--write` puts it into
// README.md between the api markers. test/unit/api.test.ts fails when the two differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const START = '<!-- api:start (made by scripts/api-doc.mjs from src/index.ts) -->';
export const END = '<!-- api:end -->';

/** [module path relative to src, names] for every export statement, following `export *`. */
export function exportGroups(file = join(root, 'src', 'index.ts')) {
  const text = readFileSync(file, 'utf8');
  const groups = [];
  for (const m of text.matchAll(/export\s+(type\s+)?(\*|\{([^}]*)\})\s+from\s+'([^']+)'/g)) {
    const target = join(dirname(file), m[4].replace(/\.js$/, '.ts'));
    if (m[2] === '*') {
      groups.push(...exportGroups(target));
      continue;
    }
    const names = m[3].split(',').map((n) => n.trim()).filter(Boolean).map((n) => {
      const typeOnly = Boolean(m[1]) || n.startsWith('type ');
      const name = n.replace(/^type\s+/, '').split(/\s+as\s+/).at(-1);
      return typeOnly ? `type ${name}` : name;
    });
    groups.push([relative(join(root, 'src'), target).replace(/\.ts$/, ''), names]);
  }
  return groups;
}

export function apiSection() {
  const lines = exportGroups().map(([module, names]) => `- \`${module}\`: ${names.map((n) => `\`${n}\``).join(', ')}`);
  return [START, ...lines, END].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const section = apiSection();
  if (process.argv.includes('--write')) {
    const readme = join(root, 'README.md');
    const text = readFileSync(readme, 'utf8');
    const start = text.indexOf(START);
    const end = text.indexOf(END);
    if (start < 0 || end < 0) throw new Error('README.md has no api markers');
    writeFileSync(readme, text.slice(0, start) + section + text.slice(end + END.length));
  } else {
    console.log(section);
  }
}
