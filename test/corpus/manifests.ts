import { readAll } from '../../src/content/read.js';
import type { Target } from '../../src/content/target.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../../src/oci/schemas.js';

/**
 * Malformed bundles as a registry serves them: each case is pushed (with valid digests, so the
 * registry stores it) and tagged; `pull` and `inspect` of the tag must fail with one line
 * matching `pattern` and exit status `code`.
 */
export interface ManifestCase {
  tag: string;
  code: number;
  pattern: RegExp;
}

const doc = (value: unknown, mediaType: string): { desc: Descriptor; bytes: Uint8Array } => {
  const bytes = Buffer.from(JSON.stringify(value));
  return { desc: { mediaType, digest: digestOf(bytes), size: bytes.length }, bytes };
};

/**
 * `good` is a valid bundle index already in `repo` (pushed by cnab-oci); every case is a
 * variation of it. `image` is an ordinary image manifest in the same repository.
 */
export async function pushMalformedBundles(repo: Target, good: Descriptor, image: Descriptor): Promise<ManifestCase[]> {
  const read = async (d: Descriptor) => Buffer.from(await readAll(await repo.fetch(d), d.size));
  const index = JSON.parse((await read(good)).toString()) as Index;
  const configEntry = index.manifests!.find((m) => m.annotations?.['io.cnab.manifest.type'] === 'config')!;
  const configManifest = JSON.parse((await read(configEntry)).toString()) as Manifest;
  const cases: ManifestCase[] = [];
  const put = async (tag: string, d: { desc: Descriptor; bytes: Uint8Array }, code: number, pattern: RegExp) => {
    await repo.push(d.desc, d.bytes);
    await repo.tag(d.desc, tag);
    cases.push({ tag, code, pattern });
  };
  const blob = async (bytes: Uint8Array, mediaType: string): Promise<Descriptor> => {
    const desc = { mediaType, digest: digestOf(bytes), size: bytes.length };
    await repo.push(desc, bytes);
    return desc;
  };
  /** An index like the good one whose config entry points at a config manifest over `config`. */
  const withConfig = async (config: Descriptor, configSize = config.size) => {
    const cm = doc({ ...configManifest, config: { ...config, size: configSize } }, MediaType.OciManifest);
    await repo.push(cm.desc, cm.bytes);
    return doc({ ...index, manifests: index.manifests!.map((m) => (m === configEntry ? { ...configEntry, digest: cm.desc.digest, size: cm.desc.size } : m)) }, MediaType.OciIndex);
  };

  // The tag names an image, not a bundle.
  await repo.tag(image, 'image-manifest');
  cases.push({ tag: 'image-manifest', code: 1, pattern: /image-manifest: is a application\/vnd\.oci\.image\.manifest\.v1\+json, not a CNAB bundle index/ });

  await put('no-config', doc({ ...index, manifests: index.manifests!.filter((m) => m !== configEntry) }, MediaType.OciIndex), 1,
    /no-config: bundle config not found: no manifest in the index is annotated io\.cnab\.manifest\.type=config/);

  await put('config-not-json', await withConfig(await blob(Buffer.from('{"name": "half a bundle",'), MediaType.CnabConfig)), 1,
    /config-not-json bundle config sha256:[0-9a-f]{64}: line 1, column 26: expected a double-quoted property name, found end of input/);

  await put('config-not-a-bundle', await withConfig(await blob(Buffer.from('{"schemaVersion":"v1.2.0","name":7,"version":"1","invocationImages":[]}'), MediaType.CnabConfig)), 1,
    /config-not-a-bundle bundle config sha256:[0-9a-f]{64}: name: expected string, got integer/);

  // Descriptors that lie about sizes: the bytes are refused, with both digests or sizes named.
  await put('config-size-lies', await withConfig(configManifest.config, configManifest.config.size - 5), 1,
    new RegExp(`digest mismatch for .*@${configManifest.config.digest}: expected ${configManifest.config.digest}, got more than ${configManifest.config.size - 5} bytes`));

  await put('index-size-lies', doc({ ...index, manifests: index.manifests!.map((m) => (m === configEntry ? { ...m, size: m.size + 3 } : m)) }, MediaType.OciIndex), 1,
    new RegExp(`digest mismatch for .*@${configEntry.digest}: expected ${configEntry.digest}, got sha256:[0-9a-f]{64} \\(${configEntry.size} bytes, expected ${configEntry.size + 3}\\)`));

  // A component entry naming a component the bundle does not have.
  await put('unknown-component', doc({
    ...index,
    manifests: [...index.manifests!, { ...image, annotations: { 'io.cnab.manifest.type': 'component', 'io.cnab.component.name': 'ghost' } }],
  }, MediaType.OciIndex), 1, /unknown-component: component "ghost" of descriptor sha256:[0-9a-f]{64} not found in bundle/);

  // A config manifest said to be over the 4 MiB manifest limit: refused before it is read.
  // (distribution itself refuses to store a manifest that big, so the index claims it.)
  await put('oversized-manifest', doc({ ...index, manifests: index.manifests!.map((m) => (m === configEntry ? { ...m, size: 5 * 1024 * 1024 } : m)) }, MediaType.OciIndex), 1,
    new RegExp(`@${configEntry.digest}: .*5242880 bytes is over the 4194304-byte limit`));

  return cases;
}
