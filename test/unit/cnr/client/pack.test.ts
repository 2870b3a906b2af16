import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseHelmIgnore } from '../../../../src/cnr/client/helmignore.js';
import { packPackage, releaseFromChart } from '../../../../src/cnr/client/pack.js';
import { inspectPackage } from '../../../../src/cnr/model/package.js';
import { CnrError } from '../../../../src/cnr/model/errors.js';
import { InputError } from '../../../../src/oci/errors.js';
import { readTarGz } from './tarballs.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'cnab-oci-cnr-pack-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function tree(files: Record<string, string>, root = work): Promise<string> {
  for (const [path, body] of Object.entries(files)) {
    const full = join(root, ...path.split('/'));
    if (path.endsWith('/')) {
      await mkdir(full, { recursive: true });
      continue;
    }
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, body);
  }
  return root;
}

const names = async (bytes: Buffer) => (await readTarGz(bytes)).map((e) => e.name);

describe('packPackage', () => {
  it('puts everything under one top directory named after the package, in order, with fixed owners and times', async () => {
    await tree({ 'Chart.yaml': 'name: app\nversion: 1.0.0\n', 'values.yaml': 'a: 1\n', 'templates/b.yaml': 'b', 'templates/a.yaml': 'a', 'README.md': '# app', 'empty/': '' });
    await chmod(join(work, 'values.yaml'), 0o600);
    await chmod(join(work, 'templates'), 0o750);
    const bytes = await packPackage(work, { packageName: 'app', mediaType: 'kpm' });
    const entries = await readTarGz(bytes);
    expect(entries.map((e) => e.name)).toEqual([
      'app/',
      'app/Chart.yaml',
      'app/README.md',
      'app/empty/',
      'app/templates/',
      'app/templates/a.yaml',
      'app/templates/b.yaml',
      'app/values.yaml',
    ]);
    for (const e of entries) {
      expect(e).toMatchObject({ mtime: 0, uid: 0, gid: 0, uname: '', gname: '' });
      expect(e.type).toBe(e.name.endsWith('/') ? 'directory' : 'file');
    }
    expect(entries.find((e) => e.name === 'app/values.yaml')).toMatchObject({ mode: 0o600, body: 'a: 1\n' });
    expect(entries.find((e) => e.name === 'app/templates/')!.mode).toBe(0o750);
    // gzip header: no time, so the bytes depend on the tree alone.
    expect(bytes.readUInt32LE(4)).toBe(0);
  });

  it('is deterministic: times do not matter, content does', async () => {
    await tree({ 'Chart.yaml': 'name: app\nversion: 1.0.0\n', 'templates/x.yaml': 'x' });
    const first = await packPackage(work, { packageName: 'app', mediaType: 'helm' });
    await utimes(join(work, 'templates', 'x.yaml'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect((await packPackage(work, { packageName: 'app', mediaType: 'helm' })).equals(first)).toBe(true);
    await writeFile(join(work, 'templates', 'x.yaml'), 'y');
    const changed = await packPackage(work, { packageName: 'app', mediaType: 'helm' });
    expect((await inspectPackage(changed)).digest).not.toBe((await inspectPackage(first)).digest);
  });

  it('gives what inspectPackage reads as a chart', async () => {
    await tree({ 'Chart.yaml': 'apiVersion: v2\nname: app\nversion: 0.3.1\n', 'templates/x.yaml': 'x' });
    const bytes = await packPackage(work, { packageName: 'app', mediaType: 'application/vnd.cnr.package-manifest.helm.v0.json' });
    const content = await inspectPackage(bytes);
    expect(content.chart).toMatchObject({ name: 'app', version: '0.3.1' });
    expect(content.size).toBe(bytes.length);
  });

  it('leaves out .git directories, as appr did', async () => {
    await tree({ 'manifest.yaml': 'm', '.git/HEAD': 'ref', 'sub/.git/config': 'c', '.gitignore': 'x' });
    expect(await names(await packPackage(work, { packageName: 'app', mediaType: 'kpm' }))).toEqual(['app/', 'app/.gitignore', 'app/manifest.yaml', 'app/sub/']);
  });

  it('refuses a symlink, naming it', async () => {
    await tree({ 'Chart.yaml': 'c', 'templates/a.yaml': 'a' });
    await symlink('/etc/passwd', join(work, 'templates', 'passwd'));
    const packing = packPackage(work, { packageName: 'app', mediaType: 'kpm' });
    await expect(packing).rejects.toThrow(InputError);
    await expect(packPackage(work, { packageName: 'app', mediaType: 'kpm' })).rejects.toThrow(`${join(work, 'templates', 'passwd')}: is a symbolic link`);
  });

  it('refuses a symlinked directory too', async () => {
    await tree({ 'Chart.yaml': 'c', 'real/a': 'a' });
    await symlink(join(work, 'real'), join(work, 'alias'));
    await expect(packPackage(work, { packageName: 'app', mediaType: 'kpm' })).rejects.toThrow(/alias: is a symbolic link/);
  });

  it('refuses bad names and missing directories with one-line errors', async () => {
    await expect(packPackage(work, { packageName: 'ns/app', mediaType: 'kpm' })).rejects.toThrow(/only the name part/);
    await expect(packPackage(work, { packageName: 'App', mediaType: 'kpm' })).rejects.toThrow(CnrError);
    await expect(packPackage(work, { packageName: 'app', mediaType: 'Not a type' })).rejects.toThrow(/invalid media type/);
    await expect(packPackage(join(work, 'nope'), { packageName: 'app', mediaType: 'kpm' })).rejects.toThrow(`${join(work, 'nope')}: no such file or directory`);
    await writeFile(join(work, 'file'), 'x');
    await expect(packPackage(join(work, 'file'), { packageName: 'app', mediaType: 'kpm' })).rejects.toThrow(`${join(work, 'file')}: not a directory`);
  });

  describe('.helmignore (helm only)', () => {
    const files = {
      'Chart.yaml': 'name: app\nversion: 1.0.0\n',
      'values.yaml': 'v',
      'notes.txt': 'n',
      'keep.txt': 'k',
      'templates/a.yaml': 'a',
      'templates/.hidden': 'h',
      'templates/a.yaml.bak': 'b',
      'ci/values.yaml': 'c',
      'docs/ci': 'a file named ci',
      'secret/': '',
      'secret/key': 'k',
      'nested/secret': 'a file named secret',
    };
    const ignore = ['# comment', '', '  *.bak  ', '*.txt', '!keep.txt', '/ci/', 'secret/', 'docs/c?'].join('\n');

    it('honours globs, comments, rooted and directory-only patterns and negation; keeps .helmignore, drops templates dot files', async () => {
      await tree({ ...files, '.helmignore': ignore });
      expect(await names(await packPackage(work, { packageName: 'app', mediaType: 'helm' }))).toEqual([
        'app/',
        'app/.helmignore',
        'app/Chart.yaml',
        'app/docs/',
        'app/keep.txt',
        'app/nested/',
        'app/nested/secret',
        'app/templates/',
        'app/templates/a.yaml',
        'app/values.yaml',
      ]);
    });

    it('is not read for other media types', async () => {
      await tree({ ...files, '.helmignore': ignore });
      const all = await names(await packPackage(work, { packageName: 'app', mediaType: 'kpm' }));
      expect(all).toContain('app/templates/.hidden');
      expect(all).toContain('app/notes.txt');
      expect(all).toContain('app/secret/key');
    });

    it('drops a symlink it ignores before refusing it, as Helm does', async () => {
      await tree({ 'Chart.yaml': 'c', '.helmignore': 'link\n' });
      await symlink('/etc', join(work, 'link'));
      expect(await names(await packPackage(work, { packageName: 'app', mediaType: 'helm' }))).toEqual(['app/', 'app/.helmignore', 'app/Chart.yaml']);
    });

    it('refuses "**" and bad patterns, naming the line', async () => {
      await tree({ 'Chart.yaml': 'c', '.helmignore': '# x\n**/tmp\n' });
      await expect(packPackage(work, { packageName: 'app', mediaType: 'helm' })).rejects.toThrow(`${join(work, '.helmignore')}: line 2: "**/tmp": "**" is not supported`);
      await writeFile(join(work, '.helmignore'), 'a[b\n');
      await expect(packPackage(work, { packageName: 'app', mediaType: 'helm' })).rejects.toThrow(/line 1: "a\[b": bad pattern/);
    });
  });
});

describe('parseHelmIgnore', () => {
  const rules = (text: string) => parseHelmIgnore(text, '.helmignore');

  it('matches names without a slash at any depth, paths with one from the root', () => {
    const r = rules('*.tgz\nfoo/bar\n');
    expect(r.ignores('a.tgz', false)).toBe(true);
    expect(r.ignores('charts/dep.tgz', false)).toBe(true);
    expect(r.ignores('foo/bar', false)).toBe(true);
    expect(r.ignores('x/foo/bar', false)).toBe(false);
  });

  it('keeps wildcards within a path component', () => {
    const r = rules('a*z\ntemplates/*.yaml\n');
    expect(r.ignores('abcz', false)).toBe(true);
    expect(r.ignores('templates/x.yaml', false)).toBe(true);
    expect(r.ignores('templates/sub/x.yaml', false)).toBe(false);
  });

  it('supports classes, negated classes and escapes', () => {
    const r = rules('[ab].txt\nfile[^0-9]\n\\*star\n[!x]y\n');
    expect(r.ignores('a.txt', false)).toBe(true);
    expect(r.ignores('c.txt', false)).toBe(false);
    expect(r.ignores('filex', false)).toBe(true);
    expect(r.ignores('file1', false)).toBe(false);
    expect(r.ignores('*star', false)).toBe(true);
    expect(r.ignores('xstar', false)).toBe(false);
    expect(r.ignores('zy', false)).toBe(true);
    expect(r.ignores('xy', false)).toBe(false);
  });

  it('lets the last matching line decide', () => {
    const r = rules('*.txt\n!keep*.txt\nkeep-not.txt\n');
    expect(r.ignores('a.txt', false)).toBe(true);
    expect(r.ignores('keep.txt', false)).toBe(false);
    expect(r.ignores('keep-not.txt', false)).toBe(true);
    expect(r.ignores('Chart.yaml', false)).toBe(false);
  });

  it('always drops dot files directly in templates/', () => {
    const r = rules('!templates/.keep\n');
    expect(r.ignores('templates/.keep', false)).toBe(true);
    expect(r.ignores('templates/sub/.keep', false)).toBe(false);
    expect(r.ignores('templates/.a', false)).toBe(true);
  });

  it('never ignores the root', () => {
    expect(rules('*\n').ignores('', true)).toBe(false);
  });
});

describe('releaseFromChart', () => {
  it('reads the version of Chart.yaml', async () => {
    await tree({ 'Chart.yaml': 'apiVersion: v2\nname: app\nversion: 1.2.3-rc.1+build.5\n' });
    expect(await releaseFromChart(work)).toBe('1.2.3-rc.1+build.5');
  });

  it('refuses what is not a SemVer release, naming the file', async () => {
    const file = join(work, 'Chart.yaml');
    await writeFile(file, 'name: app\nversion: 1.10\n');
    await expect(releaseFromChart(work)).rejects.toThrow(`${file}: version "1.10" is not a SemVer 2.0 release`);
    await writeFile(file, 'name: app\n');
    await expect(releaseFromChart(work)).rejects.toThrow(`${file}: no version`);
    await writeFile(file, 'name: [app\n');
    await expect(releaseFromChart(work)).rejects.toThrow(`${file}: not valid YAML`);
    await rm(file);
    await expect(releaseFromChart(work)).rejects.toThrow(`${file}: no such file or directory (a chart directory holds Chart.yaml)`);
  });
});
