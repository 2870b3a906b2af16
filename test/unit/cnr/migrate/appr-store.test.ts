import { chmod, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApprBlobError, ApprStoreError, openApprStore, type ApprStore, type ReleaseSource } from '../../../../src/cnr/migrate/appr-store.js';
import { inspectPackage } from '../../../../src/cnr/model/package.js';
import { channelView, manifestView, type ListEntry, type ManifestView, type ReleaseRecord } from '../../../../src/cnr/model/views.js';

const here = dirname(fileURLToPath(import.meta.url));
const REFERENCE = resolve(here, '../../../fixtures/cnr/reference-store');
const STORE = join(REFERENCE, 'cnr');

interface Answers {
  [pkg: string]: { all: ManifestView[]; channels: Array<{ current: string; name: string; releases: string[] }> };
}
const answers = async (): Promise<Answers> => JSON.parse(await readFile(join(REFERENCE, 'answers', 'packages.json'), 'utf8')) as Answers;
const list = async (): Promise<ListEntry[]> => JSON.parse(await readFile(join(REFERENCE, 'answers', 'list.json'), 'utf8')) as ListEntry[];

/** The manifest view the server would build from a source (the blob descriptor plays no part in it). */
const view = (r: ReleaseSource): ManifestView => manifestView({ ...r, helmChart: false, blob: { mediaType: 'application/octet-stream', digest: `sha256:${'0'.repeat(64)}`, size: r.size } } as ReleaseRecord);

describe('openApprStore on the reference store', () => {
  let store: ApprStore;
  beforeEach(async () => {
    store = await openApprStore(STORE);
  });

  it('finds the store from the data directory, its parent, or packages/ itself', async () => {
    expect(store.root).toBe(STORE);
    expect((await openApprStore(REFERENCE)).root).toBe(STORE);
    expect((await openApprStore(join(STORE, 'packages'))).root).toBe(STORE);
    await expect(openApprStore(join(REFERENCE, 'answers'))).rejects.toThrow(/not a CNR store/);
    await expect(openApprStore(join(REFERENCE, 'nope'))).rejects.toThrow(/no such directory/);
  });

  it('lists the packages in packages.json order with their created_at, as the reference lists them', async () => {
    const expected = (await list()).map((e) => ({ package: e.name, createdAt: e.created_at }));
    expect(await store.packages()).toEqual(expected);
  });

  it('gives every release as the reference answers GET …/<ns>/<name>: digests, sizes, media types, created_at, metadata, order', async () => {
    const reference = await answers();
    const packages = await store.packages();
    expect(packages.map((p) => p.package).sort()).toEqual(Object.keys(reference).sort());
    for (const { package: pkg } of packages) {
      const releases = await store.releases(pkg);
      expect(releases.map(view), pkg).toEqual(reference[pkg]!.all);
      for (const r of releases) expect(r.mediaType).toMatch(/^(kpm|helm|docker-compose)$/);
    }
  });

  it('gives the channels as the reference answers GET …/channels', async () => {
    const reference = await answers();
    for (const { package: pkg } of await store.packages()) {
      expect((await store.channels(pkg)).map(channelView), pkg).toEqual(reference[pkg]!.channels);
    }
    expect(await store.channels('titi/rocketchat')).toEqual([
      { name: 'dev', current: '1.0.1', releases: ['1.0.1'] },
      { name: 'stable', current: '2.0.1', releases: ['2.0.1', '1.0.1'] },
    ]);
  });

  it('reads every blob: gzip bytes of the recorded size whose CNR digest is their file name', async () => {
    for (const { package: pkg } of await store.packages()) {
      for (const r of await store.releases(pkg)) {
        const bytes = await store.blob(pkg, r.digest);
        expect(bytes.length).toBe(r.size);
        expect((await inspectPackage(bytes)).digest).toBe(r.digest);
      }
    }
  });

  it('refuses names and digests that could lead outside the store', async () => {
    for (const pkg of ['../titi/rocketchat', 'titi/../x', 'titi', 'a/b/c', '/etc/passwd', 'Titi/rocketchat']) {
      await expect(store.releases(pkg)).rejects.toThrow(ApprStoreError);
      await expect(store.blob(pkg, 'a'.repeat(64))).rejects.toThrow(ApprStoreError);
    }
    await expect(store.blob('titi/rocketchat', '../../../../packages.json')).rejects.toThrow(/invalid CNR digest/);
    await expect(store.blob('titi/rocketchat', 'A'.repeat(64))).rejects.toThrow(/invalid CNR digest/);
  });

  it('gives nothing for a package the store does not hold', async () => {
    expect(await store.releases('nobody/here')).toEqual([]);
    expect(await store.channels('nobody/here')).toEqual([]);
    await expect(store.blob('nobody/here', 'a'.repeat(64))).rejects.toThrow(ApprBlobError);
  });
});

describe('openApprStore on a damaged copy', () => {
  let work: string;
  let root: string;
  const pkgDir = (pkg: string) => join(root, 'packages', ...pkg.split('/'));
  const releasesFile = (pkg: string) => join(pkgDir(pkg), 'releases.json');
  const blobFile = (pkg: string, digest: string) => join(pkgDir(pkg), 'digests', 'sha256', digest);
  const editJson = async (file: string, edit: (json: any) => void) => {
    const json: unknown = JSON.parse(await readFile(file, 'utf8'));
    edit(json);
    await writeFile(file, JSON.stringify(json));
  };

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-appr-store-'));
    root = join(work, 'cnr');
    await cp(STORE, root, { recursive: true });
    await makeWritable(root);
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  const ES = 'myname/elasticsearch';
  const ES_DIGEST = '72ed15c9a65961ecd034cca098ec18eb99002cd402824aae8a674a8ae41bd0ef';

  it('reports a blob with a flipped byte, and reads the rest', async () => {
    const file = blobFile(ES, ES_DIGEST);
    const bytes = Buffer.from(await readFile(file, 'utf8'), 'base64');
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0x01;
    await writeFile(file, bytes.toString('base64'));
    const store = await openApprStore(root);
    const err = await store.blob(ES, ES_DIGEST).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApprBlobError);
    expect(err).toMatchObject({ pkg: ES, digest: ES_DIGEST, file });
    expect((err as Error).message).toMatch(new RegExp(`^${file}: blob of ${ES}: `));
    expect((err as Error).message).not.toContain('\n');
    // The rest of the store is unharmed.
    const [compose] = await store.releases('acme/compose-app');
    expect((await store.blob('acme/compose-app', compose!.digest)).length).toBe(compose!.size);
  });

  it('reports a blob whose content is another package', async () => {
    const other = '97c61acf6bee725e8be05076a07ea5a3c84b9e31b9e1622d2c8f4666b9049899';
    await cp(join(root, 'packages', 'acme', 'compose-app', 'digests', 'sha256', other), blobFile(ES, ES_DIGEST));
    await editJson(releasesFile(ES), (j) => (j.releases['2.2.1'].manifests.helm.content.size = 151));
    await expect((await openApprStore(root)).blob(ES, ES_DIGEST)).rejects.toThrow(`${blobFile(ES, ES_DIGEST)}: blob of ${ES}: content digest is ${other}`);
  });

  it('reports a size that differs from the record, text that is not base64, gzip that is no tar, a missing blob', async () => {
    const store = await openApprStore(root);
    const file = blobFile(ES, ES_DIGEST);
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.slice(0, -8));
    await expect(store.blob(ES, ES_DIGEST)).rejects.toThrow(/bytes, but releases\.json records 583/);
    await writeFile(file, `${text.slice(0, 10)}*${text.slice(11)}`);
    await expect(store.blob(ES, ES_DIGEST)).rejects.toThrow(/not base64 text/);
    await writeFile(file, Buffer.from('not gzip').toString('base64'));
    await editJson(releasesFile(ES), (j) => (j.releases['2.2.1'].manifests.helm.content.size = 8));
    await expect((await openApprStore(root)).blob(ES, ES_DIGEST)).rejects.toThrow(/blob of myname\/elasticsearch: is not gzip data/);
    await rm(file);
    await expect(store.blob(ES, ES_DIGEST)).rejects.toThrow(`${file}: blob of ${ES}: missing`);
  });

  it('names the file and field of a releases.json that is not what the reference writes', async () => {
    const file = releasesFile(ES);
    const original = await readFile(file, 'utf8');
    const broken = async (edit: (json: any) => void, message: string) => {
      await writeFile(file, original);
      await editJson(file, edit);
      await expect((await openApprStore(root)).releases(ES)).rejects.toThrow(`${file}: ${message}`);
    };
    await broken((j) => (j.releases['2.2.1'].manifests.helm.content.digest = '../../../../../etc/passwd'), 'releases["2.2.1"].manifests.helm.content.digest: expected a CNR digest');
    await broken((j) => delete j.releases['2.2.1'].manifests.helm.created_at, 'releases["2.2.1"].manifests.helm.created_at:');
    await broken((j) => (j.releases['2.2.1'].manifests.helm.content.size = -1), 'releases["2.2.1"].manifests.helm.content.size:');
    await broken((j) => (j.releases['2.2.1'].manifests.helm.metadata = ['a']), 'releases["2.2.1"].manifests.helm.metadata:');
    await broken((j) => (j.releases['2.2.1'].manifests.helm.mediaType = 'application/vnd.cnr.package-manifest.kpm.v0.json'), 'releases["2.2.1"].manifests.helm.mediaType: "application/vnd.cnr.package-manifest.kpm.v0.json" is not the media type helm');
    await broken((j) => (j.releases['2.2.1'].manifests.helm.package = 'other/pkg'), 'releases["2.2.1"].manifests.helm.package: "other/pkg" is not myname/elasticsearch');
    await broken((j) => (j.releases['latest'] = j.releases['2.2.1']), 'releases.latest: not a SemVer 2.0 release');
    await writeFile(file, '{"releases": ');
    await expect((await openApprStore(root)).releases(ES)).rejects.toThrow(new RegExp(`^${file}: not valid JSON`));
  });

  it('names the field of a packages.json entry with a bad name, or reports it and goes on', async () => {
    const file = join(root, 'packages', 'packages.json');
    await editJson(file, (j) => (j.packages['..'] = { etc: { created_at: 'x', name: 'etc', namespace: '..' } }));
    const store = await openApprStore(root);
    await expect(store.packages()).rejects.toThrow(`${file}: packages[".."].etc: invalid package namespace ".."`);
    const invalid: string[] = [];
    const packages = await store.packages({ onInvalid: (e) => invalid.push(e.message) });
    expect(packages.map((p) => p.package)).toEqual(['titi/rocketchat', 'myname/elasticsearch', 'acme/compose-app']);
    expect(invalid).toHaveLength(1);
    await editJson(file, (j) => {
      delete j.packages['..'];
      delete j.packages.titi.rocketchat.created_at;
    });
    await expect(store.packages()).rejects.toThrow(`${file}: packages.titi.rocketchat.created_at:`);
  });

  it('keeps the order of packages.json even for names made of digits', async () => {
    const file = join(root, 'packages', 'packages.json');
    await editJson(file, (j) => {
      j.packages['123'] = { '7': { created_at: '2026-12-01T20:00:00.000000', name: '7', namespace: '123' } };
    });
    // JSON.stringify put "123" first, as JSON.parse reads it; write it last, as Python would have.
    const text = await readFile(file, 'utf8');
    const json = JSON.parse(text) as { packages: Record<string, unknown> };
    const rest = Object.entries(json.packages).filter(([k]) => k !== '123');
    const ordered = `{"page": 0, "packages": {${[...rest, ['123', json.packages['123']] as const].map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}}`;
    await writeFile(file, ordered);
    expect((await (await openApprStore(root)).packages()).map((p) => p.package)).toEqual(['titi/rocketchat', 'myname/elasticsearch', 'acme/compose-app', '123/7']);
  });

  it('drops or mends channels left pointing at deleted releases', async () => {
    const pkg = 'titi/rocketchat';
    await editJson(releasesFile(pkg), (j) => {
      delete j.releases['1.0.1']; // dev's only release, stable's older one
    });
    expect(await (await openApprStore(root)).channels(pkg)).toEqual([{ name: 'stable', current: '2.0.1', releases: ['2.0.1'] }]);
    await editJson(releasesFile(pkg), (j) => {
      j.releases['0.0.1'].channels = ['stable'];
      delete j.releases['2.0.1'];
    });
    expect(await (await openApprStore(root)).channels(pkg)).toEqual([{ name: 'stable', current: '0.0.1', releases: ['0.0.1'] }]);
  });

  it('refuses a channel name that cannot become a tag, naming the field', async () => {
    const file = releasesFile('titi/rocketchat');
    await editJson(file, (j) => (j.channels['bad name'] = { name: 'bad name', current: '1.0.1', package: 'titi/rocketchat' }));
    await expect((await openApprStore(root)).channels('titi/rocketchat')).rejects.toThrow(`${file}: channels["bad name"]: invalid channel name`);
  });

  it('reads an empty store', async () => {
    await rm(join(root, 'packages', 'packages.json'));
    expect(await (await openApprStore(root)).packages()).toEqual([]);
  });
});

/** The reference store is read-only on disk; a copy must be editable and removable. */
async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await makeWritable(path);
    else await chmod(path, 0o644);
  }
}
