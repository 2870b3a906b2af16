import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };

describe('the CLI entry point', () => {
  it('prints the package version for --version and -V (the fast path) and after other flags (commander)', async () => {
    for (const args of [['--version'], ['-V'], ['--json', '--version']]) {
      const res = await runCli(args);
      expect({ args, code: res.code, stdout: res.stdout, stderr: res.stderr }).toEqual({ args, code: 0, stdout: `${version}\n`, stderr: '' });
    }
  });

  it('prints help listing every command group, and a one-line error for an unknown command', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['push', 'pull', 'copy', 'archive', 'import', 'sign', 'verify', 'login', 'cnr']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    const typo = await runCli(['pusj']);
    expect(typo.code).toBe(2);
    expect(typo.stderr.trim().split('\n')).toHaveLength(1);
    expect(typo.stderr).toMatch(/unknown command 'pusj'/);
  });
});
