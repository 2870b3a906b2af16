import { stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { IndexSchema, type Descriptor } from '../oci/schemas.js';
import { InputError } from '../oci/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { firstIssue, readJsonFile } from './layout-json.js';
import { KeyedQueue } from '../util/keyed-queue.js';

export const INDEX_FILE = 'index.json';

/** index.json as read: validated, with unknown top-level fields kept so a rewrite does not drop them. */
export type IndexFile = Record<string, unknown> & { manifests: Descriptor[] };

/**
 * index.json updates per layout directory, chained so that two tags in one process never
 * read-modify-write over each other (keyed by absolute path: two OciLayout objects may share a dir).
 */
const indexQueues = new KeyedQueue();

/** A layout's index.json: read and checked, and rewritten whole, one change at a time. */
export class LayoutIndex {
  private parsedIndex: { key: string; index: IndexFile } | undefined;

  constructor(private readonly dir: string) {}

  async read(): Promise<IndexFile> {
    const file = join(this.dir, INDEX_FILE);
    // The parse of what this process last wrote is reused while the file is unchanged (a new inode otherwise).
    const st = await stat(file, { bigint: true }).catch(() => undefined);
    const key = st ? `${st.ino}:${st.mtimeNs}:${st.size}` : undefined;
    if (key !== undefined && this.parsedIndex?.key === key) return { ...this.parsedIndex.index, manifests: [...this.parsedIndex.index.manifests] };
    const json = await readJsonFile(file, `${file}: no such file (not an OCI image layout)`);
    const parsed = IndexSchema.safeParse(json);
    if (!parsed.success) throw new InputError(`${file}: not an OCI image index: ${firstIssue(parsed.error)}`);
    // Kept only when this process wrote the file (update): a reader keeps its own view of it.
    return { ...(json as Record<string, unknown>), manifests: parsed.data.manifests ?? [] };
  }

  update(change: (manifests: Descriptor[]) => Descriptor[]): Promise<void> {
    const key = resolvePath(this.dir);
    return indexQueues.run(key, async () => {
      const index = await this.read();
      index.manifests = change(index.manifests);
      const file = join(this.dir, INDEX_FILE);
      await writeFileAtomic(file, JSON.stringify(index));
      // What was just written is the parse of the file now there: the next read need not parse it.
      const st = await stat(file, { bigint: true }).catch(() => undefined);
      if (st) this.parsedIndex = { key: `${st.ino}:${st.mtimeNs}:${st.size}`, index: { ...index, manifests: [...index.manifests] } };
    });
  }
}
