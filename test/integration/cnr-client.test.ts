import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { call, startCnrServer, type CnrServer } from '../helpers/cnr-server.js';
import { makePackage, makeTarball } from '../helpers/cnr-packages.js';
import { externalAddress, startRegistry, type TestRegistry } from '../helpers/registry.js';

/**
 * The CNR client commands (`cnab-oci cnr login|logout|push|pull|show|list|channel`) against
 * real `cnr serve` processes, one over an OCI layout and one over a registry:2 prefix. Writes
 * need credentials (--htpasswd), so every write goes with the token `cnr login` stored.
 */

const USER = 'alice';
const PASSWORD = `alice-pw-${randomBytes(6).toString('hex')}`;
const WRONG = `wrong-pw-${randomBytes(6).toString('hex')}`;
/** The token's secret part: `basic <this>`. */
const TOKEN_SECRET = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');

const cnrDigest = (gz: Buffer): string => createHash('sha256').update(gunzipSync(gz)).digest('hex');
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** No credential in anything a command printed. */
function expectNoSecret(res: CliResult, what: string): void {
  for (const text of [res.stdout, res.stderr]) {
    expect(text, what).not.toContain(PASSWORD);
    expect(text, what).not.toContain(TOKEN_SECRET);
  }
}

function expectOk(res: CliResult, what: string): void {
  expect(res.code, `${what}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`).toBe(0);
}

/** One-line error, the convention of main.ts. */
function expectError(res: CliResult, code: number, pattern: RegExp, what: string): void {
  expect(res.code, `${what}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`).toBe(code);
  expect(res.stderr, what).toMatch(/^cnab-oci: error: .+$/m);
  expect(res.stderr, what).toMatch(pattern);
}

/** Files under `dir`, relative, `/`-separated, sorted. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path);
      else out.push(path);
    }
  };
  await walk('');
  return out.sort();
}

type Channel = { name: string; current: string; releases: string[] };

const STORES = ['layout', 'registry'] as const;

describe.each(STORES)('cnr client commands against cnr serve on the %s store', (kind) => {
  let root: string;
  let registry: TestRegistry | undefined;
  let layoutDir: string;
  let server: CnrServer;
  /** `127.0.0.1:PORT`: the server part of references. */
  let host: string;
  let api: string;
  let authFile: string;

  const cli = (args: string[], options: { input?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> =>
    runCli(args, { cwd: root, env: { CNAB_OCI_CNR_AUTH_FILE: authFile, ...options.env }, ...(options.input !== undefined ? { input: options.input } : {}) });
  const json = (res: CliResult): unknown => JSON.parse(res.stdout);
  const get = async (path: string): Promise<unknown> => {
    const res = await call(`${api}/${path}`);
    expect(res.status, `GET ${path}: ${res.body.toString()}`).toBe(200);
    return res.json;
  };
  /** The OCI blob file (gzip bytes) of a pushed package, in the storage itself. */
  const storedBlobFile = (pkg: string, gz: Buffer): string => {
    const hex = sha256(gz);
    return registry
      ? join(registry.storageDir!, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
      : join(layoutDir, ...pkg.split('/'), 'blobs', 'sha256', hex);
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), `cnab-oci-cnr-client-${kind}-`));
    layoutDir = join(root, 'store');
    authFile = join(root, 'config', 'cnr-auth.json');
    const htpasswd = join(root, 'htpasswd');
    await writeFile(htpasswd, `${USER}:${bcrypt.hashSync(PASSWORD, 4)}\n`);
    let storage = `oci:${layoutDir}`;
    if (kind === 'registry') {
      registry = await startRegistry();
      storage = `${registry.host}/cnrclient`;
    }
    server = await startCnrServer({ storage, args: ['--htpasswd', htpasswd, '--log-format', 'none'] });
    host = `127.0.0.1:${server.port}`;
    api = `${server.url}/api/v1/packages`;
  });

  afterAll(async () => {
    await server?.stop();
    await registry?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('refuses a wrong password (exit 1, the server\'s message) and stores nothing', async () => {
    const res = await cli(['cnr', 'login', host, '-u', USER, '--password-stdin'], { input: `${WRONG}\n` });
    expectError(res, 1, /invalid username or password/, 'login with a wrong password');
    expect(res.stderr).not.toContain(WRONG);
    expect(existsSync(authFile)).toBe(false);
  });

  it('refuses a push before login: 401 is exit status 2', async () => {
    const dir = join(root, 'early');
    await mkdir(dir);
    await writeFile(join(dir, 'manifest.jsonnet'), '{}\n');
    const res = await cli(['cnr', 'push', `${host}/acme/early`, dir, '--release', '1.0.0']);
    expectError(res, 2, /credentials required .*log in first: cnab-oci cnr login 127\.0\.0\.1:\d+/, 'anonymous push');
  });

  it('logs in: the token goes to the auth file (0600, other entries kept), never to the output', async () => {
    await mkdir(join(root, 'config'), { recursive: true });
    await writeFile(authFile, JSON.stringify({ auths: { 'other.example.com': { token: 'basic b3RoZXI6a2VlcA==', note: 'mine' } }, extra: true }), { mode: 0o644 });
    const res = await cli(['--debug', 'cnr', 'login', host, '-u', USER, '--password-stdin'], { input: `${PASSWORD}\n` });
    expectOk(res, 'login');
    expect(res.stdout).toBe('Login Succeeded\n');
    expectNoSecret(res, 'login --debug');
    expect((await stat(authFile)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(authFile, 'utf8'))).toEqual({
      auths: { 'other.example.com': { token: 'basic b3RoZXI6a2VlcA==', note: 'mine' }, [host]: { token: `basic ${TOKEN_SECRET}` } },
      extra: true,
    });
    // No temporary file left next to it.
    expect((await readdir(join(root, 'config'))).sort()).toEqual(['cnr-auth.json']);

    const insecure = await cli(['--json', 'cnr', 'login', host, '-u', USER, '-p', PASSWORD]);
    expectOk(insecure, 'login -p');
    expect(insecure.stderr).toMatch(/warning: using --password on the command line is insecure/);
    expect(json(insecure)).toEqual({ server: host, file: authFile });
    expect(insecure.stdout).not.toContain(TOKEN_SECRET);

    // Without CNAB_OCI_CNR_AUTH_FILE: ${XDG_CONFIG_HOME}/cnab-oci/cnr-auth.json.
    const xdg = join(root, 'xdg');
    const viaXdg = await cli(['cnr', 'login', host, '-u', USER, '--password-stdin'], { input: PASSWORD, env: { CNAB_OCI_CNR_AUTH_FILE: undefined, XDG_CONFIG_HOME: xdg } });
    expectOk(viaXdg, 'login with XDG_CONFIG_HOME');
    expect(viaXdg.stderr).toContain(join(xdg, 'cnab-oci', 'cnr-auth.json'));
    expect((await stat(join(xdg, 'cnab-oci', 'cnr-auth.json'))).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(join(xdg, 'cnab-oci', 'cnr-auth.json'), 'utf8'))).toEqual({ auths: { [host]: { token: `basic ${TOKEN_SECRET}` } } });
  });

  it('pushes a chart directory with the stored token, honouring .helmignore; --debug shows no secret', async () => {
    const dir = join(root, 'webapp');
    await mkdir(join(dir, 'templates'), { recursive: true });
    await writeFile(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: webapp\nversion: 0.3.0\ndescription: test\n');
    await writeFile(join(dir, 'values.yaml'), 'replicas: 2\n');
    await writeFile(join(dir, 'templates', 'deploy.yaml'), 'kind: Deployment\n');
    await writeFile(join(dir, '.helmignore'), '# local files\nsecret.txt\n*.bak\n');
    await writeFile(join(dir, 'secret.txt'), 'do not ship\n');
    await writeFile(join(dir, 'templates', 'old.yaml.bak'), 'kind: Old\n');

    const res = await cli(['--debug', 'cnr', 'push', `${host}/charts/webapp`, dir]);
    expectOk(res, 'push chart dir');
    expectNoSecret(res, 'push --debug');
    expect(res.stderr).toMatch(/^debug: POST http:\/\/127\.0\.0\.1:\d+\/cnr\/api\/v1\/packages\/charts\/webapp -> 200$/m);
    const view = (await get('charts/webapp/0.3.0/helm')) as { content: { digest: string; size: number }; mediaType: string };
    expect(view.mediaType).toBe('application/vnd.cnr.package-manifest.helm.v0.json');
    expect(res.stdout).toBe(`pushed charts/webapp@0.3.0 (helm, ${view.content.size} bytes, digest ${view.content.digest.slice(0, 12)})\n`);
  });

  it('pulls it into ./NAME-RELEASE and --output DIR: the ignored files are absent', async () => {
    const out = join(root, 'pulled-webapp');
    const [res, explicit] = await Promise.all([
      cli(['cnr', 'pull', `${host}/charts/webapp`, '--media-type', 'helm']),
      cli(['--json', 'cnr', 'pull', `${host}/charts/webapp@0.3.0`, '--media-type', 'helm', '--output', out]),
    ]);
    expectOk(res, 'pull default output');
    expect(res.stdout).toMatch(/^pulled charts\/webapp@0\.3\.0 \(helm, \d+ bytes, digest [0-9a-f]{12}\) -> webapp-0\.3\.0$/m);
    const expected = ['webapp/.helmignore', 'webapp/Chart.yaml', 'webapp/templates/deploy.yaml', 'webapp/values.yaml'];
    expect(await tree(join(root, 'webapp-0.3.0'))).toEqual(expected);
    expect(await readFile(join(root, 'webapp-0.3.0', 'webapp', 'values.yaml'), 'utf8')).toBe('replicas: 2\n');

    expectOk(explicit, 'pull --output');
    expect(json(explicit)).toMatchObject({ package: 'charts/webapp', release: '0.3.0', mediaType: 'helm', output: out, files: expect.arrayContaining(expected) });
    expect(await tree(out)).toEqual(expected);

    // The destination must be new or empty.
    const again = await cli(['cnr', 'pull', `${host}/charts/webapp`, '--media-type', 'helm', '--output', out]);
    expectError(again, 2, /exists and is not empty/, 'pull into a non-empty directory');
  });

  it('pushes a .tar.gz file as it is; pull --tarball gives the same bytes', async () => {
    const blob = await makePackage('tool', 'one');
    const file = join(root, 'tool-1.0.0.tgz');
    await writeFile(file, blob);
    const other = await makePackage('tool', 'zero');
    await writeFile(join(root, 'tool-0.9.0.tgz'), other);
    const [res, viaRef] = await Promise.all([
      cli(['--json', 'cnr', 'push', `${host}/acme/tool`, file, '--release', '1.0.0']),
      // A release in the reference works as --release does.
      cli(['cnr', 'push', `${host}/acme/tool@0.9.0`, join(root, 'tool-0.9.0.tgz')]),
    ]);
    expectOk(res, 'push file');
    expectOk(viaRef, 'push ref@release');
    const shown = await get('acme/tool/1.0.0/kpm');
    expect(json(res)).toEqual(shown);
    expect(shown).toMatchObject({ content: { digest: cnrDigest(blob), size: blob.length }, release: '1.0.0', package: 'acme/tool', metadata: null });

    const tarball = join(root, 'tool-pulled.tgz');
    const pulled = await cli(['cnr', 'pull', `${host}/acme/tool@1.0.0`, '--media-type', 'kpm', '--tarball', tarball]);
    expectOk(pulled, 'pull --tarball');
    expect((await readFile(tarball)).equals(blob)).toBe(true);

    expect(await get('acme/tool/0.9.0/kpm')).toMatchObject({ content: { digest: cnrDigest(other) } });
  });

  it('refuses a second push of a release (409, exit 2); --force overwrites it', async () => {
    const blob = await makePackage('tool', 'two');
    const file = join(root, 'tool-1.0.0-b.tgz');
    await writeFile(file, blob);
    expectError(await cli(['cnr', 'push', `${host}/acme/tool`, file, '--release', '1.0.0']), 2, /already exists/, 'push existing');
    expectOk(await cli(['cnr', 'push', `${host}/acme/tool`, file, '--release', '1.0.0', '--force']), 'push --force');
    expect(await get('acme/tool/1.0.0/kpm')).toMatchObject({ content: { digest: cnrDigest(blob), size: blob.length } });
    const tarball = join(root, 'tool-forced.tgz');
    expectOk(await cli(['cnr', 'pull', `${host}/acme/tool@1.0.0`, '--media-type', 'kpm', '--tarball', tarball]), 'pull forced');
    expect((await readFile(tarball)).equals(blob)).toBe(true);
  });

  // Checks of the command line, the same whatever the store: run once.
  if (kind === 'layout') it('refuses bad input with exit status 2, naming it', async () => {
    const junk = join(root, 'junk.tgz');
    await writeFile(junk, 'this is not a tarball\n');
    const plainTar = join(root, 'plain.tar');
    await writeFile(plainTar, await makeTarball([{ name: 'x/a.txt', content: 'a' }], { gzip: false }));
    const dir = join(root, 'kpmdir');
    await mkdir(dir);
    await writeFile(join(dir, 'manifest.jsonnet'), '{}\n');
    const cases: Array<[string[], RegExp, string]> = [
      [['cnr', 'push', `${host}/acme/junk`, junk, '--release', '1.0.0'], new RegExp(`${junk.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a package`), 'push junk'],
      [['cnr', 'push', `${host}/acme/junk`, plainTar, '--release', '1.0.0'], /plain\.tar: not a package: blob is not gzip/, 'push a plain tar'],
      [['cnr', 'push', `${host}/acme/kpmdir`, dir], /--release/, 'kpm dir without release'],
      [['cnr', 'push', `${host}/acme/kpmdir`, dir, '--release', '1.0'], /not a SemVer/, 'bad release'],
      [['cnr', 'push', `${host}/acme/kpmdir`, dir, '--release', '1.0.0', '--metadata', '[1]'], /metadata must be a JSON object/, 'bad metadata'],
      [['cnr', 'push', `${host}/acme/kpmdir`, join(root, 'missing')], /missing: no such file or directory/, 'missing path'],
      [['cnr', 'pull', `${host}/Acme/tool`], /invalid package reference/, 'bad reference'],
      [['cnr', 'show', `${host}/acme/nothing`], /package acme\/nothing not found/, 'unknown package'],
      [['cnr', 'pull', `${host}/acme/tool`, '--output', 'a', '--tarball', 'b'], /mutually exclusive/, '--output and --tarball'],
      [['cnr', 'push', `${host}/acme/kpmdir`, dir, '--release', '1.0.0', '--channel', 'no way'], /invalid channel name "no way"/, 'bad channel name, refused before the push'],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((res, i) => expectError(res, 2, cases[i]![1], cases[i]![2]));
  });

  it('--channel adds the pushed release to a channel; --metadata is stored; :channel pulls the current', async () => {
    const blob = await makePackage('tool', 'eleven');
    const file = join(root, 'tool-1.1.0.tgz');
    await writeFile(file, blob);
    const metaFile = join(root, 'meta.json');
    await writeFile(metaFile, JSON.stringify({ maintainers: ['ops@example.com'], tier: 2 }));
    const pre = await makePackage('tool', 'pre');
    await writeFile(join(root, 'tool-2.0.0-rc.1.tgz'), pre);
    const [res, beta] = await Promise.all([
      cli(['--json', 'cnr', 'push', `${host}/acme/tool`, file, '--release', '1.1.0', '--channel', 'stable', '--metadata', `@${metaFile}`]),
      cli(['cnr', 'push', `${host}/acme/tool`, join(root, 'tool-2.0.0-rc.1.tgz'), '--release', '2.0.0-rc.1', '--media-type', 'docker-compose', '--metadata', '{"beta": true}']),
    ]);
    expectOk(res, 'push --channel');
    expect(json(res)).toMatchObject({ release: '1.1.0', channels: ['stable'], metadata: { maintainers: ['ops@example.com'], tier: 2 } });
    expect(await get('acme/tool/channels/stable')).toEqual({ name: 'stable', current: '1.1.0', releases: ['1.1.0'] });

    expectOk(beta, 'push docker-compose with metadata');
    expect(beta.stdout).toMatch(/^pushed acme\/tool@2\.0\.0-rc\.1 \(docker-compose, /);
    expect(await get('acme/tool/2.0.0-rc.1/docker-compose')).toMatchObject({ metadata: { beta: true } });

    const tarball = join(root, 'stable.tgz');
    const [pulled, only] = await Promise.all([
      cli(['cnr', 'pull', `${host}/acme/tool:stable`, '--media-type', 'kpm', '--tarball', tarball]),
      // Without --media-type: the release's only one.
      cli(['cnr', 'pull', `${host}/acme/tool@2.0.0-rc.1`, '--tarball', join(root, 'rc.tgz')]),
    ]);
    expectOk(pulled, 'pull :stable');
    expect(pulled.stdout).toMatch(/^pulled acme\/tool@1\.1\.0 \(kpm, /);
    expect((await readFile(tarball)).equals(blob)).toBe(true);
    expectOk(only, 'pull the only media type');
    expect((await readFile(join(root, 'rc.tgz'))).equals(pre)).toBe(true);
  });

  it('show: every release and channel (--json: the raw views), or one release\'s media types', async () => {
    const all = await get('acme/tool');
    const channels = await get('acme/tool/channels');
    const [full, text, one, viaChannel, byDefault, unknown] = await Promise.all([
      cli(['--json', 'cnr', 'show', `${host}/acme/tool`]),
      cli(['cnr', 'show', `${host}/acme/tool`]),
      cli(['--json', 'cnr', 'show', `${host}/acme/tool@1.1.0`]),
      cli(['--json', 'cnr', 'show', `${host}/acme/tool:stable`]),
      cli(['cnr', 'show', `${host}/acme/tool@default`]),
      cli(['cnr', 'show', `${host}/acme/tool@3.0.0`]),
    ]);
    expectOk(full, 'show --json');
    expect(json(full)).toEqual({ views: all, channels });

    expectOk(text, 'show');
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^RELEASE\s+MEDIA TYPE\s+CREATED\s+DIGEST\s+SIZE$/);
    // Highest release first.
    expect(lines.slice(1, 5).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(['2.0.0-rc.1 docker-compose', '1.1.0 kpm', '1.0.0 kpm', '0.9.0 kpm']);
    const v110 = (all as { release: string; content: { digest: string }; created_at: string }[]).find((v) => v.release === '1.1.0')!;
    expect(text.stdout).toMatch(new RegExp(`^1\\.1\\.0\\s+kpm\\s+${v110.created_at}\\s+${v110.content.digest.slice(0, 12)}\\s+\\d+ B$`, 'm'));
    expect(text.stdout).toMatch(/^CHANNEL\s+CURRENT\s+RELEASES$/m);
    expect(text.stdout).toMatch(/^stable\s+1\.1\.0\s+1\.1\.0$/m);

    expectOk(one, 'show @release');
    expect(json(one)).toEqual({ views: [await get('acme/tool/1.1.0/kpm')] });
    expect(json(viaChannel)).toEqual(json(one));
    expectOk(byDefault, 'show @default');
    expect(byDefault.stdout).toMatch(/^2\.0\.0-rc\.1\s+docker-compose\s/m);
    expectError(unknown, 2, /release 3\.0\.0 of acme\/tool not found/, 'show unknown release');
  });

  it('list: every package, filtered by namespace, text and media type', async () => {
    const names = async (...flags: string[]) => (json(await cli(['--json', 'cnr', 'list', host, ...flags])) as { name: string }[]).map((e) => e.name);
    const [everything, text, byNamespace, bySearch, byType, none] = await Promise.all([
      cli(['--json', 'cnr', 'list', host]),
      cli(['cnr', 'list', host]),
      names('--namespace', 'acme'),
      names('--search', 'web'),
      names('--media-type', 'helm'),
      names('--namespace', 'nobody'),
    ]);
    expectOk(everything, 'list --json');
    const listed = (await call(`${api}`)).json as { name: string }[];
    expect(json(everything)).toEqual(listed);
    expect(listed.map((e) => e.name).sort()).toEqual(['acme/tool', 'charts/webapp']);

    expectOk(text, 'list');
    expect(text.stdout).toMatch(/^NAME\s+DEFAULT\s+RELEASES\s+MEDIA TYPES$/m);
    expect(text.stdout).toMatch(/^acme\/tool\s+2\.0\.0-rc\.1\s+4\s+docker-compose$/m);
    expect(text.stdout).toMatch(/^charts\/webapp\s+0\.3\.0\s+1\s+helm$/m);

    expect(byNamespace).toEqual(['acme/tool']);
    expect(bySearch).toEqual(['charts/webapp']);
    expect(byType).toEqual(['charts/webapp']);
    expect(none).toEqual([]);
  });

  it('channel: lists, adds, removes and deletes', async () => {
    const ref = `${host}/acme/tool`;
    const listed = await cli(['--json', 'cnr', 'channel', ref]);
    expectOk(listed, 'channel list');
    expect(json(listed)).toEqual(await get('acme/tool/channels'));

    const [added, legacy] = await Promise.all([
      cli(['--json', 'cnr', 'channel', ref, '--add', 'stable', '1.0.0']),
      cli(['cnr', 'channel', `${ref}@0.9.0`, '--add', 'legacy']),
    ]);
    expectOk(added, 'channel --add');
    expectOk(legacy, 'channel ref@release --add');
    expect(await get('acme/tool/channels/stable')).toEqual({ name: 'stable', current: '1.0.0', releases: ['1.1.0', '1.0.0'] });
    expect(json(added)).toMatchObject({ package: 'acme/tool', action: 'add', channel: 'stable', release: '1.0.0' });
    expect((json(added) as { channels: Channel[] }).channels.find((c) => c.name === 'stable')).toEqual({ name: 'stable', current: '1.0.0', releases: ['1.1.0', '1.0.0'] });
    expect(await get('acme/tool/channels/legacy')).toEqual({ name: 'legacy', current: '0.9.0', releases: ['0.9.0'] });

    const text = await cli(['cnr', 'channel', ref]);
    expect(text.stdout).toMatch(/^legacy\s+0\.9\.0\s+0\.9\.0$/m);
    expect(text.stdout).toMatch(/^stable\s+1\.0\.0\s+1\.1\.0, 1\.0\.0$/m);

    const [removed, deleted] = await Promise.all([
      cli(['--json', 'cnr', 'channel', ref, '--remove', 'stable', '1.0.0']),
      cli(['cnr', 'channel', ref, '--delete', 'legacy']),
    ]);
    expectOk(removed, 'channel --remove');
    expectOk(deleted, 'channel --delete');
    expect(await get('acme/tool/channels/stable')).toEqual({ name: 'stable', current: '1.1.0', releases: ['1.1.0'] });
    expect((await call(`${api}/acme/tool/channels/legacy`)).status).toBe(404);

    const [noRelease, twoActions, unknown, unknownRelease] = await Promise.all([
      cli(['cnr', 'channel', ref, '--add', 'x']),
      cli(['cnr', 'channel', ref, '--add', 'x', '1.0.0', '--delete', 'y']),
      cli(['cnr', 'channel', ref, '--delete', 'nosuch']),
      cli(['cnr', 'channel', ref, '--add', 'x', '7.7.7']),
    ]);
    expectError(noRelease, 2, /which release/, '--add without release');
    expectError(twoActions, 2, /one of --add, --remove, --delete/, 'two actions');
    expectError(unknown, 2, /channel nosuch of acme\/tool not found/, 'delete unknown');
    expectError(unknownRelease, 2, /7\.7\.7/, 'add unknown release');
  });

  if (kind === 'layout') it('--prefix gives the base path; a URL gives scheme and path', async () => {
    const prefixes = ['/cnr', ''];
    const [withPrefix, withoutPrefix, wrong, url] = await Promise.all([
      ...prefixes.map((prefix) => cli(['--debug', 'cnr', 'show', `${host}/acme/tool@1.1.0`, '--prefix', prefix])),
      cli(['cnr', 'list', host, '--prefix', '/nope']),
      cli(['--json', 'cnr', 'show', `http://${host}/cnr/acme/tool@1.1.0`]),
    ]);
    [withPrefix!, withoutPrefix!].forEach((res, i) => {
      const prefix = prefixes[i]!;
      expectOk(res, `--prefix ${JSON.stringify(prefix)}`);
      expect(res.stderr).toContain(`GET http://${host}${prefix}/version -> 200`);
      expect(res.stderr).toContain(`GET http://${host}${prefix}/api/v1/packages/acme/tool`);
    });
    expectError(wrong!, 1, /no CNR API at \/nope\/version/, 'wrong prefix');
    expectOk(url!, 'URL reference');
    expect((json(url!) as { views: unknown[] }).views).toHaveLength(1);
  });

  it('refuses a blob that changed in storage: exit status non-zero, nothing written', async () => {
    if (registry && !registry.storageDir) return; // a registry in a container: its files are out of reach
    const blob = await makePackage('tampered', 'original', 200);
    const file = join(root, 'tampered.tgz');
    await writeFile(file, blob);
    expectOk(await cli(['cnr', 'push', `${host}/acme/tampered`, file, '--release', '1.0.0']), 'push before tampering');
    // Other valid gzip bytes of the same length, over the stored blob (never read, so never cached).
    let other: Buffer | undefined;
    for (let i = 0; i < 200 && !other; i++) {
      const candidate = await makePackage('tampered', `other${i}`, 200);
      if (candidate.length === blob.length && !candidate.equals(blob)) other = candidate;
    }
    if (!other) {
      other = Buffer.from(blob);
      other[other.length - 5]! ^= 0xff;
    }
    const stored = storedBlobFile('acme/tampered', blob);
    expect((await readFile(stored)).equals(blob)).toBe(true);
    await writeFile(stored, other);

    const tarball = join(root, 'tampered-pulled.tgz');
    const out = join(root, 'tampered-out');
    const [res, unpacked] = await Promise.all([
      cli(['--retries', '0', 'cnr', 'pull', `${host}/acme/tampered@1.0.0`, '--media-type', 'kpm', '--tarball', tarball]),
      cli(['--retries', '0', 'cnr', 'pull', `${host}/acme/tampered@1.0.0`, '--media-type', 'kpm', '--output', out]),
    ]);
    expect(res.code, res.stderr).not.toBe(0);
    expect(res.stderr).toMatch(/^cnab-oci: error: .*(storage unavailable|digest mismatch|size mismatch)/m);
    expect(existsSync(tarball)).toBe(false);
    expect(unpacked.code, unpacked.stderr).not.toBe(0);
    expect(existsSync(out)).toBe(false);
    expect((await readdir(root)).filter((n) => n.startsWith('.tampered') || n.startsWith('tampered-'))).toEqual([]);
  });

  if (kind === 'layout') it('uses plain HTTP for a non-loopback server only with --insecure-registry', async () => {
    const address = externalAddress();
    // The check needs an address that is not loopback: required in CI, said out loud elsewhere.
    if (address === undefined) {
      if (process.env.CI) throw new Error('this test needs a non-loopback IPv4 address on the machine');
      console.warn('not checked: no non-loopback IPv4 address on this machine');
      return;
    }
    const htpasswd = join(root, 'htpasswd');
    const external = await startCnrServer({ storage: `oci:${layoutDir}`, host: address, args: ['--htpasswd', htpasswd, '--log-format', 'none'] });
    try {
      const ext = `${address}:${external.port}`;
      const refused = await cli(['--retries', '0', 'cnr', 'show', `${ext}/acme/tool`]);
      expectError(refused, 1, /over HTTPS/, 'plain HTTP to a non-loopback host');
      const allowed = await cli(['--insecure-registry', ext, 'cnr', 'show', `${ext}/acme/tool`]);
      expectOk(allowed, '--insecure-registry');
      expect(allowed.stdout).toMatch(/^1\.1\.0\s+kpm\s/m);
    } finally {
      await external.stop();
    }
  });

  it('logout forgets the token (other entries kept); writes are refused again', async () => {
    const res = await cli(['--json', 'cnr', 'logout', host]);
    expectOk(res, 'logout');
    expect(json(res)).toEqual({ server: host, file: authFile, removed: true });
    expect(JSON.parse(await readFile(authFile, 'utf8'))).toEqual({ auths: { 'other.example.com': { token: 'basic b3RoZXI6a2VlcA==', note: 'mine' } }, extra: true });
    expect((await stat(authFile)).mode & 0o777).toBe(0o600);
    const again = await cli(['cnr', 'logout', host]);
    expectOk(again, 'second logout');
    expect(again.stderr).toMatch(/Not logged in/);
    expectError(await cli(['cnr', 'channel', `${host}/acme/tool`, '--add', 'x', '1.0.0']), 2, /credentials required/, 'write after logout');
  });
});
