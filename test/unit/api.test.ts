import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const START = '<!-- api:start';
const END = '<!-- api:end -->';

async function madeSection(): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'scripts', 'api-doc.mjs')]);
  return stdout.trim();
}

describe('the public API', () => {
  it('is what the README lists (npm run api-doc rewrites the list)', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const start = readme.indexOf(START);
    const end = readme.indexOf(END);
    expect(start, 'README.md has the api markers').toBeGreaterThan(0);
    expect(readme.slice(start, end + END.length)).toBe(await madeSection());
  });

  it('is listed whole: every value src/index.ts exports, and nothing it does not', async () => {
    const listed = [...(await madeSection()).matchAll(/`([^`]+)`/g)].map((m) => m[1]!).filter((n) => !n.includes('/') && !n.startsWith('type '));
    const actual = Object.keys(await import('../../src/index.js'));
    expect([...listed].sort()).toEqual([...actual].sort());
  });
});
