import { Readable, Transform, pipeline } from 'node:stream';
import type { Mountable, ReadOnlyTarget, Target } from '../content/target.js';
import { MAX_MANIFEST_SIZE, readAll } from '../content/read.js';
import { digestOf, isDigest, parseDigest, verifyingStream } from '../oci/digest.js';
import { DigestMismatchError, InvalidContentError, NotFoundError } from '../oci/errors.js';
import { MANIFEST_ACCEPT, isManifestLike } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/schemas.js';
import type { RegistryClient } from './client.js';
import { AuthError, errorForResponse, RegistryError } from './errors.js';
import { header, type Response, type SendOptions } from './transport.js';

type Access = 'pull' | 'push';

interface CallOptions extends SendOptions {
  access: Access;
  /** Other repositories the request reads from (cross-repository mount). */
  alsoPull?: string[];
}

/**
 * One repository of a registry, speaking the OCI distribution API. A `Target`: resolve, fetch
 * (verified against the descriptor), exists, push (streamed blobs, verified manifests), tag;
 * and `Mountable`: blobs of another repository of the same registry move without their bytes.
 */
export class Repository implements Target, Mountable {
  readonly location: string;
  /** Manifests this process pushed or read here, so tagging does not download them again. */
  private readonly manifests = new Map<string, Uint8Array>();

  constructor(private readonly client: RegistryClient, readonly registry: string, readonly name: string) {
    this.location = `${registry}/${name}`;
  }

  async resolve(reference: string): Promise<Descriptor> {
    const what = this.describe(reference);
    const res = await this.call(`/manifests/${reference}`, { method: 'HEAD', access: 'pull', headers: { accept: MANIFEST_ACCEPT } });
    if (res.statusCode !== 200) await this.fail(res, what);
    await res.body.dump();
    const mediaType = contentType(res);
    const digestHeader = header(res, 'docker-content-digest');
    const length = Number(header(res, 'content-length'));
    if (mediaType && isManifestLike(mediaType) && Number.isSafeInteger(length) && length > 0) {
      if (isDigest(reference)) return { mediaType, digest: reference, size: length };
      if (digestHeader && isDigest(digestHeader)) return { mediaType, digest: digestHeader, size: length };
    }
    // Some registries answer HEAD without a digest or type: read the manifest and hash it.
    const { bytes, mediaType: type } = await this.getManifest(reference, what);
    const digest = isDigest(reference) ? reference : digestOf(bytes);
    if (digest !== digestOf(bytes, parseDigest(digest).algorithm)) throw new DigestMismatchError(what, digest, digestOf(bytes, parseDigest(digest).algorithm));
    this.manifests.set(digest, bytes);
    return { mediaType: type, digest, size: bytes.length };
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    const what = this.describe(desc.digest);
    const cached = this.manifests.get(desc.digest);
    if (cached) return Readable.from([cached]);
    const manifest = isManifestLike(desc.mediaType);
    const res = await this.call(`/${manifest ? 'manifests' : 'blobs'}/${desc.digest}`, {
      method: 'GET',
      access: 'pull',
      headers: manifest ? { accept: `${desc.mediaType}, ${MANIFEST_ACCEPT}` } : {},
      followRedirects: true,
    });
    if (res.statusCode !== 200) await this.fail(res, what);
    const verified = verifyingStream(desc, what);
    pipeline(res.body, verified, () => {});
    return verified;
  }

  async exists(desc: Descriptor): Promise<boolean> {
    const kind = isManifestLike(desc.mediaType) ? 'manifests' : 'blobs';
    const res = await this.call(`/${kind}/${desc.digest}`, {
      method: 'HEAD',
      access: 'pull',
      headers: kind === 'manifests' ? { accept: `${desc.mediaType}, ${MANIFEST_ACCEPT}` } : {},
      followRedirects: true,
    });
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    return this.fail(res, this.describe(desc.digest));
  }

  async push(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    if (isManifestLike(desc.mediaType)) return this.putManifest(desc, content, desc.digest);
    return this.uploadBlob(desc, content);
  }

  async tag(desc: Descriptor, reference: string): Promise<void> {
    const bytes = this.manifests.get(desc.digest) ?? (await readAll(await this.fetch(desc), MAX_MANIFEST_SIZE));
    await this.putManifest(desc, bytes, reference);
  }

  async mountFrom(desc: Descriptor, source: ReadOnlyTarget): Promise<boolean> {
    if (!(source instanceof Repository) || source.registry !== this.registry || source.name === this.name) return false;
    if (isManifestLike(desc.mediaType)) return false;
    const query = new URLSearchParams({ mount: desc.digest, from: source.name });
    let res: Response;
    try {
      res = await this.call(`/blobs/uploads/?${query}`, { method: 'POST', access: 'push', alsoPull: [source.name] });
    } catch (err) {
      if (err instanceof AuthError) return false; // no read access to the source: copy the bytes instead
      throw err;
    }
    await res.body.dump();
    if (res.statusCode === 201) return true;
    // 202: the registry opened an ordinary upload instead (it could not or would not mount).
    if (res.statusCode === 202) await this.cancelUpload(res);
    else this.client.transport.log(`${this.location}: mount of ${desc.digest} from ${source.name} declined with HTTP ${res.statusCode}`);
    return false;
  }

  /** List every tag, following the `Link` header's pages. */
  async tags(): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = '/tags/list?n=1000';
    while (path) {
      const res = await this.call(path, { method: 'GET', access: 'pull' });
      if (res.statusCode !== 200) await this.fail(res, `${this.location} tags`);
      const body = (await res.body.json()) as { tags?: unknown };
      if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === 'string'));
      const link = header(res, 'link')?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
      path = link?.[1];
    }
    return tags;
  }

  /** GET /v2/ with credentials: proves the registry answers and accepts them. */
  static async ping(client: RegistryClient, registry: string): Promise<void> {
    const repo = new Repository(client, registry, '');
    const res = await repo.call('/v2/', { method: 'GET', access: 'pull', absolutePath: true } as CallOptions);
    await res.body.dump();
    if (res.statusCode === 401) throw new AuthError(`${registry}: credentials missing or refused`, 401);
    if (res.statusCode !== 200) throw new RegistryError(`${registry}: /v2/ answered HTTP ${res.statusCode}`, res.statusCode);
  }

  private async putManifest(desc: Descriptor, content: Readable | Uint8Array, reference: string): Promise<void> {
    const bytes = content instanceof Uint8Array ? content : await readAll(content, MAX_MANIFEST_SIZE);
    const actual = digestOf(bytes, parseDigest(desc.digest).algorithm);
    if (actual !== desc.digest || bytes.length !== desc.size) throw new DigestMismatchError(this.describe(desc.digest), desc.digest, actual);
    const res = await this.call(`/manifests/${reference}`, {
      method: 'PUT',
      access: 'push',
      headers: { 'content-type': desc.mediaType },
      body: bytes,
    });
    if (res.statusCode !== 201 && res.statusCode !== 200) {
      const text = await res.body.text();
      throw errorForResponse(`${this.describe(reference)} (${desc.mediaType})`, res.statusCode, text, 'manifest-write');
    }
    await res.body.dump();
    const stored = header(res, 'docker-content-digest');
    if (stored && isDigest(stored) && stored !== desc.digest && parseDigest(stored).algorithm === parseDigest(desc.digest).algorithm) {
      throw new InvalidContentError(`${this.describe(reference)}: registry stored the manifest as ${stored}, not ${desc.digest}`);
    }
    this.manifests.set(desc.digest, bytes);
  }

  private async uploadBlob(desc: Descriptor, content: Readable | Uint8Array): Promise<void> {
    const what = this.describe(desc.digest);
    const start = await this.call('/blobs/uploads/', { method: 'POST', access: 'push', headers: { 'content-length': '0' } });
    await start.body.dump();
    if (start.statusCode !== 202) await this.fail(start, `${what} (upload)`, 'write');
    const location = header(start, 'location');
    if (!location) throw new RegistryError(`${what}: registry started an upload without a Location`, start.statusCode);
    const url = new URL(location, await this.client.transport.origin(this.registry));
    url.searchParams.set('digest', desc.digest);

    // Verify on our side too, so a bad source fails with our message rather than the registry's.
    let sourceError: Error | undefined;
    let body: Readable | Uint8Array;
    if (content instanceof Uint8Array) {
      const actual = digestOf(content, parseDigest(desc.digest).algorithm);
      if (actual !== desc.digest || content.length !== desc.size) throw new DigestMismatchError(what, desc.digest, actual);
      body = content;
    } else {
      const verified: Transform = verifyingStream(desc, what);
      pipeline(content, verified, (err) => {
        if (err) sourceError = err;
      });
      body = verified;
    }
    let res: Response;
    try {
      res = await this.call(url.toString(), {
        method: 'PUT',
        access: 'push',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body,
      });
    } catch (err) {
      throw sourceError ?? err;
    }
    if (sourceError) {
      await res.body.dump();
      throw sourceError;
    }
    if (res.statusCode !== 201) {
      const text = await res.body.text();
      throw errorForResponse(`${what} (upload)`, res.statusCode, text, 'write');
    }
    await res.body.dump();
  }

  private async cancelUpload(res: Response): Promise<void> {
    const location = header(res, 'location');
    if (!location) return;
    try {
      const url = new URL(location, await this.client.transport.origin(this.registry));
      const del = await this.call(url.toString(), { method: 'DELETE', access: 'push' });
      await del.body.dump();
    } catch {
      // An abandoned upload is the registry's to collect; nothing of ours is left half-written.
    }
  }

  private async getManifest(reference: string, what: string): Promise<{ bytes: Uint8Array; mediaType: string }> {
    const res = await this.call(`/manifests/${reference}`, { method: 'GET', access: 'pull', headers: { accept: MANIFEST_ACCEPT } });
    if (res.statusCode !== 200) await this.fail(res, what);
    const bytes = await readAll(res.body as unknown as Readable, MAX_MANIFEST_SIZE);
    let mediaType = contentType(res);
    if (!mediaType || !isManifestLike(mediaType)) {
      try {
        mediaType = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: string }).mediaType;
      } catch {
        mediaType = undefined;
      }
    }
    if (!mediaType || !isManifestLike(mediaType)) throw new InvalidContentError(`${what}: not an image manifest or index`);
    return { bytes, mediaType };
  }

  /** Send an API request with the authorization it needs, answering one 401 challenge. */
  private async call(pathOrUrl: string, opts: CallOptions & { absolutePath?: boolean }): Promise<Response> {
    const transport = this.client.transport;
    const url = /^https?:\/\//.test(pathOrUrl)
      ? pathOrUrl
      : `${await transport.origin(this.registry)}${opts.absolutePath ? pathOrUrl : `/v2/${this.name}${pathOrUrl}`}`;
    const scopes = this.name ? [`repository:${this.name}:${opts.access === 'push' ? 'pull,push' : 'pull'}`, ...(opts.alsoPull ?? []).map((n) => `repository:${n}:pull`)] : [];
    const sent = await this.client.auth.authorization(this.registry, scopes);
    const send = (authorization: string | undefined): Promise<Response> =>
      transport.send(url, { ...opts, headers: { ...opts.headers, ...(authorization ? { authorization } : {}) } });
    const res = await send(sent);
    const replayable = !(opts.body && !(opts.body instanceof Uint8Array));
    if (res.statusCode !== 401 || !replayable) return res;
    const next = await this.client.auth.challenged(this.registry, header(res, 'www-authenticate'), scopes, sent);
    if (!next) return res;
    await res.body.dump();
    return send(next);
  }

  private async fail(res: Response, what: string, action: 'read' | 'write' = 'read'): Promise<never> {
    const text = res.statusCode === 404 || res.statusCode >= 400 ? await res.body.text().catch(() => '') : '';
    throw errorForResponse(what, res.statusCode, text, action);
  }

  private describe(reference: string): string {
    return isDigest(reference) ? `${this.location}@${reference}` : `${this.location}:${reference}`;
  }
}

function contentType(res: Response): string | undefined {
  return header(res, 'content-type')?.split(';')[0]?.trim();
}
