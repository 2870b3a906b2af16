import { Readable } from 'node:stream';
import type { Target } from './target.js';
import type { Descriptor } from '../oci/schemas.js';
import { digestOf } from '../oci/digest.js';
import { DigestMismatchError, NotFoundError } from '../oci/errors.js';
import { readAll } from './read.js';

/** An in-memory Target, for small graphs (a bundle's config and manifests) and tests. */
export class MemoryTarget implements Target {
  readonly location: string;
  private readonly blobs = new Map<string, { desc: Descriptor; data: Uint8Array }>();
  private readonly tags = new Map<string, Descriptor>();

  constructor(location = 'memory') {
    this.location = location;
  }

  async resolve(reference: string): Promise<Descriptor> {
    const desc = this.tags.get(reference) ?? this.blobs.get(reference)?.desc;
    if (!desc) throw new NotFoundError(`${this.location}: ${reference} not found`);
    return desc;
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    return Readable.from([this.get(desc)]);
  }

  get(desc: Descriptor): Uint8Array {
    const entry = this.blobs.get(desc.digest);
    if (!entry) throw new NotFoundError(`${this.location}: ${desc.digest} not found`);
    return entry.data;
  }

  async exists(desc: Descriptor): Promise<boolean> {
    return this.blobs.has(desc.digest);
  }

  async push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    const data = content instanceof Uint8Array ? content : await readAll(content, desc.size);
    const actual = digestOf(data, desc.digest.startsWith('sha512:') ? 'sha512' : 'sha256');
    if (actual !== desc.digest || data.length !== desc.size) {
      throw new DigestMismatchError(`${this.location}`, desc.digest, actual);
    }
    this.blobs.set(desc.digest, { desc, data });
  }

  async tag(desc: Descriptor, reference: string): Promise<void> {
    if (!this.blobs.has(desc.digest)) throw new NotFoundError(`${this.location}: cannot tag missing ${desc.digest}`);
    this.tags.set(reference, desc);
  }
}
