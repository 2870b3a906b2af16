// The CLI as users run it: dist/cli/main.js (tsc's output) and everything it imports bundled
// into dist/bin, in chunks along the lazy imports of the commands. Unbundled, `inspect` opened
// 215 modules (95 of them zod's, its 50 locales included) and spent about 0.3 s loading them;
// bundled, 67 files, of which the dead code is gone (bench/startup.mjs, README "Start-up").
// Left outside: Node's built-ins, undici (loaded in parts through createRequire, see
// registry/dispatchers.ts) and fastify (only `cnr serve` loads it, with its plugins and logger).
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = fileURLToPath(new URL('..', import.meta.url));

await build({
  cwd: root,
  input: { 'cnab-oci': 'dist/cli/main.js' },
  logLevel: 'warn',
  platform: 'node',
  external: [...builtinModules, /^node:/, /^undici(\/|$)/, /^fastify(\/|$)/, /^@fastify\//],
  output: { dir: 'dist/bin', cleanDir: true, format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
});
