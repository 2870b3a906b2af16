import { mkdtemp, readFile, rm, stat, writeFile, mkdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  containersAuthPath,
  defaultCredentialStore,
  dockerCredentialStore,
  eraseDockerCredential,
  saveDockerCredential,
} from '../../../src/registry/credentials.js';
import type { HelperRunner } from '../../../src/registry/credential-helpers.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const HUB_NAMES = ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/'];

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnab-oci-creds-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configFile(content: unknown, name = 'config.json'): Promise<string> {
  const d = join(dir, `c${n++}`);
  await mkdir(d, { recursive: true });
  const path = join(d, name);
  await writeFile(path, JSON.stringify(content));
  return path;
}

/** A credential helper in memory, speaking the protocol's JSON. */
function fakeHelper(): { run: HelperRunner; calls: [string, string, string][]; stored: Map<string, { Username: string; Secret: string }> } {
  const stored = new Map<string, { Username: string; Secret: string }>();
  const calls: [string, string, string][] = [];
  const run: HelperRunner = async (helper, action, input) => {
    calls.push([helper, action, input]);
    if (action === 'store') {
      const v = JSON.parse(input) as { ServerURL: string; Username: string; Secret: string };
      stored.set(v.ServerURL, { Username: v.Username, Secret: v.Secret });
      return '';
    }
    if (action === 'erase') {
      stored.delete(input);
      return '';
    }
    const v = stored.get(input);
    return v ? JSON.stringify({ ServerURL: input, ...v }) : '';
  };
  return { run, calls, stored };
}

describe('Docker Hub aliases', () => {
  for (const key of HUB_NAMES) {
    it(`an auths entry under ${key} is found by every Hub name`, async () => {
      const path = await configFile({ auths: { [key]: { auth: b64('hubuser:hubpw') } } });
      const store = dockerCredentialStore({ configPath: path });
      for (const name of HUB_NAMES) expect(await store.get(name), name).toEqual({ username: 'hubuser', password: 'hubpw' });
      expect(await store.get('quay.io')).toBeUndefined();
    });
  }

  it('a credHelpers entry under any Hub name is asked with https://index.docker.io/v1/', async () => {
    for (const key of HUB_NAMES) {
      const path = await configFile({ credHelpers: { [key]: 'fake' } });
      const helper = fakeHelper();
      helper.stored.set('https://index.docker.io/v1/', { Username: 'u', Secret: 's' });
      const store = dockerCredentialStore({ configPath: path, runHelper: helper.run });
      for (const name of HUB_NAMES) expect(await store.get(name), `${key} / ${name}`).toEqual({ username: 'u', password: 's' });
      expect(helper.calls.every(([h, a, input]) => h === 'fake' && a === 'get' && input === 'https://index.docker.io/v1/')).toBe(true);
    }
  });
});

describe('containers auth.json', () => {
  it('REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json', () => {
    expect(containersAuthPath({ REGISTRY_AUTH_FILE: '/a/auth.json', XDG_RUNTIME_DIR: '/run/user/1' })).toBe('/a/auth.json');
    expect(containersAuthPath({ XDG_RUNTIME_DIR: '/run/user/1' })).toBe('/run/user/1/containers/auth.json');
    expect(containersAuthPath({})).toBeUndefined();
  });

  it('is consulted only when Docker has nothing for the registry; repository-scoped entries are ignored', async () => {
    const docker = await configFile({ auths: { 'a.example': { auth: b64('docker:one') } } });
    const auth = await configFile({
      auths: {
        'a.example': { auth: b64('podman:two') },
        'b.example': { auth: b64('podman:three') },
        'c.example/team/app': { auth: b64('scoped:four') },
        'docker.io': { auth: b64('hub:five') },
      },
    }, 'auth.json');
    const env = { DOCKER_CONFIG: join(docker, '..'), REGISTRY_AUTH_FILE: auth };
    const store = defaultCredentialStore({ env });
    expect(await store.get('a.example')).toEqual({ username: 'docker', password: 'one' });
    expect(await store.get('b.example')).toEqual({ username: 'podman', password: 'three' });
    expect(await store.get('c.example')).toBeUndefined();
    expect(await store.get('index.docker.io')).toEqual({ username: 'hub', password: 'five' });
  });

  it('is found under $XDG_RUNTIME_DIR', async () => {
    const runtime = join(dir, 'runtime');
    await mkdir(join(runtime, 'containers'), { recursive: true });
    await writeFile(join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { 'x.example': { auth: b64('x:y') } } }));
    const store = defaultCredentialStore({ env: { DOCKER_CONFIG: join(dir, 'nothing-here'), XDG_RUNTIME_DIR: runtime } });
    expect(await store.get('x.example')).toEqual({ username: 'x', password: 'y' });
  });
});

describe('saving and erasing credentials as docker login/logout do', () => {
  it('writes auths[key].auth with mode 0600 and keeps every other field', async () => {
    const original = {
      auths: { 'other.example': { auth: b64('o:p'), email: 'kept@example.com' } },
      HttpHeaders: { 'User-Agent': 'Docker-Client/x' },
      psFormat: 'table {{.ID}}',
      proxies: { default: { httpProxy: 'http://proxy:3128' } },
    };
    const path = await configFile(original);
    const where = await saveDockerCredential('index.docker.io', { username: 'hub', password: 'pw' }, { configPath: path });
    expect(where.helper).toBeUndefined();
    const saved = JSON.parse(await readFile(path, 'utf8'));
    expect(saved).toEqual({ ...original, auths: { ...original.auths, 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await dockerCredentialStore({ configPath: path }).get('docker.io')).toEqual({ username: 'hub', password: 'pw' });

    const erased = await eraseDockerCredential('docker.io', { configPath: path });
    expect(erased.removed).toBe(true);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(original);
    expect((await eraseDockerCredential('docker.io', { configPath: path })).removed).toBe(false);
  });

  it('creates config.json (and its directory) when there is none', async () => {
    const path = join(dir, 'fresh', 'deeper', 'config.json');
    await saveDockerCredential('reg.example:5000', { username: 'u', password: 'p' }, { configPath: path });
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ auths: { 'reg.example:5000': { auth: b64('u:p') } } });
  });

  it('replaces the target of a symlinked config.json, not the link', async () => {
    const target = await configFile({ auths: {} });
    const link = join(dir, 'link-config.json');
    await symlink(target, link);
    await saveDockerCredential('reg.example', { username: 'u', password: 'p' }, { configPath: link });
    expect(JSON.parse(await readFile(target, 'utf8')).auths['reg.example']).toEqual({ auth: b64('u:p') });
  });

  it('erases every spelling of the host', async () => {
    const path = await configFile({ auths: { 'docker.io': { auth: b64('a:b') }, 'https://index.docker.io/v1/': { auth: b64('a:b') }, 'keep.example': {} } });
    await eraseDockerCredential('registry-1.docker.io', { configPath: path });
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ auths: { 'keep.example': {} } });
  });

  it('uses credHelpers[host], else credsStore, with the helper protocol; config.json keeps only an empty marker', async () => {
    for (const cfg of [{ credHelpers: { 'reg.example': 'fake' }, credsStore: 'other' }, { credsStore: 'fake' }]) {
      const path = await configFile({ ...cfg, auths: { 'reg.example': { auth: b64('old:old'), email: 'e' } } });
      const helper = fakeHelper();
      const where = await saveDockerCredential('reg.example', { username: 'u', password: 'secret' }, { configPath: path, runHelper: helper.run });
      expect(where.helper).toBe('fake');
      expect(helper.calls).toEqual([['fake', 'store', JSON.stringify({ ServerURL: 'reg.example', Username: 'u', Secret: 'secret' })]]);
      const text = await readFile(path, 'utf8');
      expect(text).not.toContain(b64('u:secret'));
      expect(JSON.parse(text).auths['reg.example']).toEqual({ email: 'e' });
      expect(await dockerCredentialStore({ configPath: path, runHelper: helper.run }).get('reg.example')).toEqual({ username: 'u', password: 'secret' });
      const erased = await eraseDockerCredential('reg.example', { configPath: path, runHelper: helper.run });
      expect(erased.removed).toBe(true);
      expect(helper.stored.size).toBe(0);
      expect(helper.calls.at(-1)).toEqual(['fake', 'erase', 'reg.example']);
    }
  });

  it('refuses a config.json that is not JSON, and leaves it alone', async () => {
    const path = await configFile({});
    await writeFile(path, '{ broken');
    await expect(saveDockerCredential('reg.example', { username: 'u', password: 'p' }, { configPath: path })).rejects.toThrow(/not valid JSON/);
    expect(await readFile(path, 'utf8')).toBe('{ broken');
  });
});

describe('config.json entries and helper answers', () => {
  it('reads auth, username/password, identitytoken and registrytoken entries', async () => {
    const path = await configFile({
      auths: {
        'a.example': { auth: b64('user:pa:ss') },
        'b.example': { username: 'u', password: 'p' },
        'c.example': { auth: b64('00000000-0000-0000-0000-000000000000:'), identitytoken: 'refresh' },
        'd.example': { registrytoken: 'bearer-value' },
        'e.example': {},
      },
    });
    const store = dockerCredentialStore({ configPath: path });
    expect(await store.get('a.example')).toEqual({ username: 'user', password: 'pa:ss' });
    expect(await store.get('b.example')).toEqual({ username: 'u', password: 'p' });
    expect(await store.get('c.example')).toEqual({ username: '00000000-0000-0000-0000-000000000000', password: '', identityToken: 'refresh' });
    expect(await store.get('d.example')).toEqual({ registryToken: 'bearer-value' });
    expect(await store.get('e.example')).toBeUndefined();
  });

  it('a helper answering Username "<token>" gives an identity token; "not found" falls back to the auths entry', async () => {
    const path = await configFile({ credsStore: 'fake', auths: { 'plain.example': { auth: b64('from:config') } } });
    const helper = fakeHelper();
    helper.stored.set('tok.example', { Username: '<token>', Secret: 'refresh-token' });
    const store = dockerCredentialStore({ configPath: path, runHelper: helper.run });
    expect(await store.get('tok.example')).toEqual({ identityToken: 'refresh-token' });
    expect(await store.get('plain.example')).toEqual({ username: 'from', password: 'config' });
    expect(await store.get('none.example')).toBeUndefined();
  });

  it('a broken auth value or helper answer is an error naming the file or helper, without the value', async () => {
    const path = await configFile({ auths: { 'x.example': { auth: b64('no-colon-secret') } } });
    const err = (await dockerCredentialStore({ configPath: path }).get('x.example').catch((e: unknown) => e)) as Error;
    expect(err.message).toContain(path);
    expect(err.message).not.toContain('no-colon-secret');
    const helperPath = await configFile({ credsStore: 'fake' });
    const bad: HelperRunner = async () => 'not json at all';
    await expect(dockerCredentialStore({ configPath: helperPath, runHelper: bad }).get('y.example')).rejects.toThrow(/docker-credential-fake returned something that is not a credential/);
  });
});

describe('an empty config.json', () => {
  it('is no configuration, as Docker reads it: lookups find nothing and login writes a new one', async () => {
    const d = join(dir, `empty${n++}`);
    await mkdir(d, { recursive: true });
    const path = join(d, 'config.json');
    await writeFile(path, '  \n');
    expect(await dockerCredentialStore({ configPath: path }).get('registry.example.com')).toBeUndefined();
    await saveDockerCredential('registry.example.com', { username: 'u', password: 'p' }, { configPath: path, runHelper: fakeHelper().run });
    expect(await dockerCredentialStore({ configPath: path }).get('registry.example.com')).toEqual({ username: 'u', password: 'p' });
  });
});
