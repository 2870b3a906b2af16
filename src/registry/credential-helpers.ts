import { execFile } from 'node:child_process';
import { z } from 'zod';
import { InputError } from '../oci/errors.js';
import type { Credential } from './credential-store.js';
import { configKeyFor } from './docker-config.js';

/**
 * Docker's credential-helper protocol: `docker-credential-<helper> get|store|erase`, one JSON
 * document or server URL on stdin, the answer on stdout.
 */

export interface HelperRunner {
  (helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<string>;
}

/** Run `docker-credential-<helper> <action>` with `input` on stdin, as the helper protocol says. */
export const runCredentialHelper: HelperRunner = (helper, action, input) =>
  new Promise((resolve, reject) => {
    const program = `docker-credential-${helper}`;
    const child = execFile(program, [action], { timeout: 30_000, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const out = `${stdout}`.trim() || `${stderr}`.trim();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new InputError(`credential helper ${program} not found on PATH (named in Docker's config.json)`));
      }
      // The protocol's "no credentials" answer is a message on stdout and a non-zero exit.
      if (/credentials not found/i.test(out)) return resolve('');
      reject(new InputError(`credential helper ${program} ${action} failed: ${out.split('\n')[0]?.slice(0, 200) ?? 'no output'}`));
    });
    child.stdin?.end(input);
  });

const HelperAnswer = z.object({ Username: z.string().optional(), Secret: z.string().optional() });

/** A helper's `get` answer for a registry; undefined when it has none. */
export async function credentialFromHelper(runHelper: HelperRunner, helper: string, registry: string): Promise<Credential | undefined> {
  const out = await runHelper(helper, 'get', configKeyFor(registry));
  if (!out.trim()) return undefined;
  let answer: z.infer<typeof HelperAnswer>;
  try {
    answer = HelperAnswer.parse(JSON.parse(out));
  } catch {
    throw new InputError(`credential helper docker-credential-${helper} returned something that is not a credential for ${registry}`);
  }
  if (!answer.Secret) return undefined;
  // The protocol marks identity tokens with the user name "<token>".
  if (answer.Username === '<token>') return { identityToken: answer.Secret };
  return { username: answer.Username, password: answer.Secret };
}
