import { Command, CommanderError, Option } from 'commander';
import { CnabOciError, InputError } from '../oci/errors.js';
import { registerAuthCommands } from './auth-commands.js';
import { registerCnrCommands } from './cnr-commands.js';
import { registerCommands } from './commands.js';
import { registerRelocateCommands } from './relocate-commands.js';
import { registerSigningCommands } from './signing-commands.js';
import { redactSecrets } from './redact.js';
import { cancelOnSignals, exitIfInterrupted, interrupted, interruptedExitCode } from './interrupt.js';

// The whole CLI: its flags, its commands (each loading what it needs when it runs), and the
// mapping of errors to one line and an exit code. main.ts answers --version without it.

export async function run(argv: string[], version: string): Promise<void> {
  const program = new Command('cnab-oci')
    .description('Move CNAB bundles in and out of OCI registries, digest-identical to cnab-to-oci')
    .version(version)
    .addOption(new Option('--insecure-registry <host>', 'allow plain HTTP / unverified TLS for this registry (repeatable)').argParser(collect).default([]))
    .addOption(new Option('--insecure-registries <hosts>', 'comma-separated insecure registries (cnab-to-oci spelling)').argParser(collectList).default([]))
    .addOption(new Option('--ca-file <pem>', 'trust this CA certificate (PEM) for registries, besides the system roots (repeatable)').argParser(collect).default([]))
    .option('--certs-dir <dir>', 'Docker-style per-registry TLS directory: <dir>/<host>/*.crt (CA), client.cert + client.key', '/etc/docker/certs.d')
    .addOption(new Option('--retries <n>', 'retries of a failed registry request (5xx, 429, connection errors), with exponential backoff; 0 = none').argParser(retries).default(3))
    .option('--json', 'print a machine-readable result on stdout', false)
    .option('--debug', 'log HTTP requests (never credentials) on stderr', false)
    .showHelpAfterError(false)
    // Commander's usage errors as ours: one line ("unknown command 'pusj' (Did you mean push?)").
    .configureOutput({ outputError: (text, write) => write(`cnab-oci: ${text.trim().replace(/\s*\n\s*/g, ' ')}\n`) })
    .exitOverride();

  registerCommands(program);
  registerRelocateCommands(program);
  registerSigningCommands(program);
  registerAuthCommands(program);
  registerCnrCommands(program);
  // Every command but the server (which stops gracefully on its own) ends cleanly on Ctrl-C.
  program.hook('preAction', (_program, action) => {
    if (!(action.name() === 'serve' && action.parent?.name() === 'cnr')) cancelOnSignals();
  });

  // A reader that went away (`| head`) is not an error of ours: stop quietly, as Unix tools do.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') interrupted.abort();
      else throw err;
    });
  }

  try {
    await program.parseAsync(argv);
  } catch (err) {
    const code = reportError(err, Boolean(program.opts().debug));
    process.exitCode = interruptedExitCode() ?? code;
  }
  exitIfInterrupted();
}

function reportError(err: unknown, debug: boolean): number {
  if (err instanceof CommanderError) {
    // Help and version also go through exitOverride; commander already printed what it had to.
    return err.exitCode === 0 ? 0 : 2;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`cnab-oci: error: ${redactSecrets(message.split('\n')[0] ?? message)}\n`);
  if (debug && err instanceof Error && err.stack && !(err instanceof CnabOciError)) {
    process.stderr.write(`${redactSecrets(err.stack)}\n`);
  }
  return err instanceof CnabOciError ? err.exitCode : 1;
}

function retries(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 100) throw new InputError(`--retries: expected an integer from 0 to 100, got ${JSON.stringify(value)}`);
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function collectList(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}
