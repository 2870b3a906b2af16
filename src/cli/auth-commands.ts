import type { Command } from 'commander';
import { InputError } from '../oci/errors.js';
import { context } from './commands.js';
import { Output } from './output.js';

/** DOCKER_HUB of src/oci/reference.ts, written out: that module (with node:crypto) loads with the commands that use it. */
const DOCKER_HUB = 'docker.io';

/** `login` and `logout`, storing credentials exactly where `docker login` would. */
export function registerAuthCommands(program: Command): void {
  program
    .command('login')
    .description('check credentials against a registry, then store them as docker login does (credential helper or config.json)')
    .argument('[registry]', 'registry host, e.g. registry.example.com:5000 (default: Docker Hub)', DOCKER_HUB)
    .requiredOption('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (insecure: other users can see it; prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin', false)
    .action(async (registryArg: string, opts: { username: string; password?: string; passwordStdin: boolean }, cmd: Command) => {
      const { configKeyFor, saveDockerCredential, staticCredentials } = await import('../registry/credentials.js');
      const registry = await registryHost(registryArg);
      const password = await loginPassword('login', opts);
      const cred = { username: opts.username, password };
      const { out, client } = await context(cmd, staticCredentials({ [registry]: cred }));
      if (opts.password !== undefined) out.warn('using --password on the command line is insecure; use --password-stdin');
      try {
        await client.ping(registry);
      } finally {
        await client.close();
      }
      const where = await saveDockerCredential(registry, cred);
      const store = where.helper ? `credential helper docker-credential-${where.helper}` : where.configPath;
      out.note(`Login Succeeded (${configKeyFor(registry)}, stored in ${store})`);
      out.result('Login Succeeded');
      out.data({ registry, key: configKeyFor(registry), helper: where.helper ?? null, configPath: where.configPath });
    });

  program
    .command('logout')
    .description('remove the stored credentials for a registry (credential helper and config.json)')
    .argument('[registry]', 'registry host (default: Docker Hub)', DOCKER_HUB)
    .action(async (registryArg: string, _opts: unknown, cmd: Command) => {
      const { configKeyFor, eraseDockerCredential } = await import('../registry/credentials.js');
      const registry = await registryHost(registryArg);
      const g = cmd.optsWithGlobals() as { json: boolean; debug: boolean };
      const out = new Output(g.json, g.debug);
      const result = await eraseDockerCredential(registry);
      out.note(result.removed ? `Removing login credentials for ${configKeyFor(registry)}` : `Not logged in to ${configKeyFor(registry)}`);
      out.data({ registry, key: configKeyFor(registry), removed: result.removed, helper: result.helper ?? null, configPath: result.configPath });
    });
}

/** `https://host/v1/`, `host:port`, Docker Hub's aliases -> the normalised host. */
async function registryHost(value: string): Promise<string> {
  const { configKeyHost } = await import('../registry/credentials.js');
  const host = configKeyHost(value);
  if (!host || !/^[a-z0-9.[\]:-]+$/i.test(host)) throw new InputError(`invalid registry ${JSON.stringify(value)}: expected a host such as registry.example.com[:port]`);
  return host;
}

/** The password of a login command (`-p`, or `--password-stdin`), with the checks both logins share. */
export async function loginPassword(command: string, opts: { username: string; password?: string; passwordStdin: boolean }): Promise<string> {
  if (opts.password !== undefined && opts.passwordStdin) throw new InputError(`${command}: --password and --password-stdin are mutually exclusive`);
  let password: string;
  if (opts.passwordStdin) password = (await readStdin()).replace(/[\r\n]+$/, '');
  else if (opts.password !== undefined) password = opts.password;
  else throw new InputError(`${command}: give the password on stdin with --password-stdin`);
  if (!opts.username) throw new InputError(`${command}: --username must not be empty`);
  if (!password) throw new InputError(`${command}: the password is empty`);
  return password;
}

export async function readStdin(): Promise<string> {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk as string;
  return text;
}
