import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

export interface Entry {
  name: string;
  content?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device';
  linkname?: string;
}

/** A tar built entry by entry (hostile ones too), gzipped unless told otherwise. */
export async function makeTarball(entries: Entry[], options: { gzip?: boolean } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  pack.on('data', (d: unknown) => parts.push(d as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = type === 'file' ? Buffer.from(e.content ?? '') : undefined;
    await new Promise<void>((resolve, reject) => {
      const header = { name: e.name, type, mode: type === 'directory' ? 0o755 : 0o644, mtime: new Date(0), ...(e.linkname ? { linkname: e.linkname } : {}), ...(content ? { size: content.length } : {}) };
      const callback = (err?: Error | null) => (err ? reject(err) : resolve());
      if (content) pack.entry(header, content, callback);
      else pack.entry(header, callback);
    });
  }
  pack.finalize();
  await done;
  const tarBytes = Buffer.concat(parts);
  return options.gzip === false ? tarBytes : gzipSync(tarBytes);
}

/** A Helm chart archive: `NAME/Chart.yaml` (and a template) under one top directory. */
export function makeChart(name: string, version: string, extra: Record<string, string> = {}): Promise<Buffer> {
  const chartYaml = `apiVersion: v2\nname: ${name}\nversion: ${version}\ndescription: A test chart\n`;
  return makeTarball([
    { name: `${name}/Chart.yaml`, content: chartYaml },
    { name: `${name}/values.yaml`, content: 'replicas: 1\n' },
    { name: `${name}/templates/cm.yaml`, content: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test\n' },
    ...Object.entries(extra).map(([path, content]) => ({ name: `${name}/${path}`, content })),
  ]);
}

/** A KPM-like package of `size` bytes of content (distinct per `seed`). */
export function makePackage(name: string, seed = 'x', size = 64): Promise<Buffer> {
  return makeTarball([{ name: `${name}/manifest.jsonnet`, content: `{ seed: "${seed}", pad: "${'p'.repeat(size)}" }\n` }]);
}

/** The JSON body of a push, as the cnr-server README's demo sends it. */
export function pushBody(blob: Buffer, release: string, mediaType?: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ blob: blob.toString('base64'), release, ...(mediaType ? { media_type: mediaType } : {}), ...extra });
}
