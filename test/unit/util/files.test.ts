import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFilesAtomic } from '../../../src/util/files.js';

describe('atomic output files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cnab-oci-files-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('replaces a file whole and leaves no temporary file', async () => {
    const path = join(dir, 'bundle.json');
    await writeFile(path, 'old');
    await writeFileAtomic(path, 'new');
    expect(await readFile(path, 'utf8')).toBe('new');
    expect(await readdir(dir)).toEqual(['bundle.json']);
  });

  it('changes none of a set of files when one of them cannot be written', async () => {
    const first = join(dir, 'bundle.json');
    await writeFile(first, 'old bundle');
    const missing = join(dir, 'no-such-dir', 'relocation-map.json');
    await expect(writeFilesAtomic([{ path: first, data: 'new bundle' }, { path: missing, data: '{}' }])).rejects.toThrow(
      `${missing}: directory ${join(dir, 'no-such-dir')} does not exist`,
    );
    expect(await readFile(first, 'utf8')).toBe('old bundle');
    expect(await readdir(dir)).toEqual(['bundle.json']);
  });

  it('writes every file of a set when all can be written', async () => {
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    await writeFilesAtomic([{ path: a, data: 'A' }, { path: b, data: new TextEncoder().encode('B') }]);
    expect(await readFile(a, 'utf8')).toBe('A');
    expect(await readFile(b, 'utf8')).toBe('B');
    expect((await readdir(dir)).sort()).toEqual(['a.json', 'b.json']);
  });

  it('changes none of a set of files when a rename fails after another succeeded', async () => {
    const first = join(dir, 'bundle.json');
    const second = join(dir, 'relocation-map.json');
    await writeFile(first, 'old bundle');
    // A directory where the second file goes: its temporary file is written, its rename fails.
    await mkdir(second);
    await writeFile(join(second, 'keep'), 'x');
    await expect(writeFilesAtomic([{ path: first, data: 'new bundle' }, { path: second, data: '{}' }])).rejects.toThrow();
    expect(await readFile(first, 'utf8')).toBe('old bundle');
    expect((await readdir(dir)).sort()).toEqual(['bundle.json', 'relocation-map.json']);
    expect(await readdir(second)).toEqual(['keep']);
  });
});
