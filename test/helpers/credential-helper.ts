import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A real Docker credential helper for tests: an executable `docker-credential-<name>` script
 * (node) in `binDir`, speaking the helper protocol (`get`, `store`, `erase`, `list`) against a
 * JSON file. Put `binDir` on the PATH of the process under test. Every call is logged (action
 * and server URL, never the secret) so tests can see which helper was asked what.
 */
export interface CredentialHelper {
  name: string;
  binDir: string;
  /** Where the helper keeps its credentials: `{ [serverURL]: { Username, Secret } }`. */
  storeFile: string;
  logFile: string;
  entries(): Promise<Record<string, { Username: string; Secret: string }>>;
  calls(): Promise<{ action: string; serverURL: string }[]>;
  set(serverURL: string, username: string, secret: string): Promise<void>;
}

const SCRIPT = (storeFile: string, logFile: string) => `#!/usr/bin/env node
const fs = require('node:fs');
const store = ${JSON.stringify(storeFile)};
const log = ${JSON.stringify(logFile)};
const action = process.argv[2];
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const all = fs.existsSync(store) ? JSON.parse(fs.readFileSync(store, 'utf8')) : {};
  const save = () => fs.writeFileSync(store, JSON.stringify(all));
  let serverURL = input.trim();
  if (action === 'store') serverURL = JSON.parse(input).ServerURL;
  fs.appendFileSync(log, JSON.stringify({ action, serverURL }) + '\\n');
  if (action === 'get') {
    const e = all[serverURL];
    if (!e) {
      process.stdout.write('credentials not found in native keychain\\n');
      process.exit(1);
    }
    process.stdout.write(JSON.stringify({ ServerURL: serverURL, Username: e.Username, Secret: e.Secret }));
  } else if (action === 'store') {
    const c = JSON.parse(input);
    all[c.ServerURL] = { Username: c.Username, Secret: c.Secret };
    save();
  } else if (action === 'erase') {
    if (!all[serverURL]) {
      process.stdout.write('credentials not found in native keychain\\n');
      process.exit(1);
    }
    delete all[serverURL];
    save();
  } else if (action === 'list') {
    process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.Username]))));
  } else {
    process.stdout.write('unknown action\\n');
    process.exit(1);
  }
});
`;

export async function makeCredentialHelper(dir: string, name: string): Promise<CredentialHelper> {
  const binDir = join(dir, 'bin');
  await mkdir(binDir, { recursive: true });
  const storeFile = join(dir, `${name}-store.json`);
  const logFile = join(dir, `${name}-calls.log`);
  const program = join(binDir, `docker-credential-${name}`);
  await writeFile(program, SCRIPT(storeFile, logFile));
  await chmod(program, 0o755);
  const entries = async () => {
    try {
      return JSON.parse(await readFile(storeFile, 'utf8')) as Record<string, { Username: string; Secret: string }>;
    } catch {
      return {};
    }
  };
  return {
    name,
    binDir,
    storeFile,
    logFile,
    entries,
    async calls() {
      try {
        return (await readFile(logFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { action: string; serverURL: string });
      } catch {
        return [];
      }
    },
    async set(serverURL, username, secret) {
      const all = await entries();
      all[serverURL] = { Username: username, Secret: secret };
      await writeFile(storeFile, JSON.stringify(all));
    },
  };
}

/** PATH with `dirs` first, for the environment of a spawned CLI. */
export function pathWith(...dirs: string[]): string {
  return [...dirs, process.env.PATH ?? ''].join(':');
}
