import { z } from 'zod';
import { ConnectionError } from '../../registry/errors.js';
import { Transport, type TransportOptions, type Response } from '../../registry/transport.js';
import { CnrError } from '../model/errors.js';
import type { PackageName } from '../model/names.js';
import type { CnrServerAddress } from '../model/reference.js';
import { ManifestViewSchema, type ChannelView, type ListEntry, type ManifestView } from '../model/views.js';

export interface CnrClientOptions extends TransportOptions {
  /** Sent as `Authorization` (the token of `login`, `basic base64(user:pass)`). Never printed. */
  token?: string;
}

// A view with `channels` (the one-release answer).
const RemoteViewSchema = ManifestViewSchema.extend({ channels: z.array(z.string()).optional() });
const ListEntrySchema = z.object({
  name: z.string(),
  default: z.string(),
  releases: z.array(z.string()),
  manifests: z.array(z.string()),
  visibility: z.string().optional(),
  created_at: z.string().optional(),
});
const ChannelSchema = z.object({ name: z.string(), current: z.string(), releases: z.array(z.string()) });
const ErrorSchema = z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() });

export type RemoteView = ManifestView & { channels?: string[] };

/**
 * A client of any CNR server: cnr-server/appr (API at the root up to 0.2.6, under /cnr from
 * 0.2.7), Quay's /cnr, and `cnab-oci cnr serve`. The scheme is found as the bridge finds a
 * registry's (HTTPS, then plain HTTP only for loopback and --insecure-registry hosts), and the
 * base path by asking `/cnr/version`, then `/version`. Answers are validated; errors are the
 * server's envelope as a CnrError.
 */
export class CnrClient {
  private base: Promise<string> | undefined;
  readonly transport: Transport;

  constructor(readonly server: CnrServerAddress, private readonly options: CnrClientOptions = {}) {
    this.transport = new Transport({ ...options, insecureRegistries: [...(options.insecureRegistries ?? []), ...(server.scheme === 'http' ? [server.host] : [])] });
  }

  /** `scheme://host/prefix`, found once. */
  baseUrl(): Promise<string> {
    this.base ??= this.discover();
    this.base.catch(() => (this.base = undefined));
    return this.base;
  }

  private async discover(): Promise<string> {
    const origin = this.server.scheme ? `${this.server.scheme}://${this.server.host}` : await this.transport.origin(this.server.host);
    const candidates = this.server.prefix !== undefined ? [this.server.prefix] : ['/cnr', ''];
    for (const prefix of candidates) {
      const res = await this.transport.send(`${origin}${prefix}/version`, { method: 'GET', headers: { accept: 'application/json' } });
      const text = await res.body.text();
      if (res.statusCode === 200 && /"cnr-api"/.test(text)) return `${origin}${prefix}`;
    }
    throw new ConnectionError(`${this.server.host}: no CNR API at ${candidates.map((p) => `${p}/version`).join(' or ')}; give the base path with --prefix`);
  }

  async version(): Promise<Record<string, unknown>> {
    return z.record(z.string(), z.unknown()).parse(await this.json('GET', '/version'));
  }

  async login(username: string, password: string): Promise<string> {
    const body = await this.json('POST', '/api/v1/users/login', { user: { username, password } }, false);
    return z.object({ token: z.string() }).parse(body).token;
  }

  async list(filter: { namespace?: string; query?: string; mediaType?: string } = {}): Promise<ListEntry[]> {
    const q = new URLSearchParams();
    if (filter.namespace) q.set('namespace', filter.namespace);
    if (filter.query) q.set('query', filter.query);
    if (filter.mediaType) q.set('media_type', filter.mediaType);
    const entries = z.array(ListEntrySchema).parse(await this.json('GET', `/api/v1/packages${q.size ? `?${q}` : ''}`));
    return entries.map((e) => ({ created_at: e.created_at ?? '', default: e.default, manifests: e.manifests, name: e.name, releases: e.releases, visibility: 'public' }));
  }

  async search(text: string): Promise<string[]> {
    return z.array(z.string()).parse(await this.json('GET', `/api/v1/packages/search?q=${encodeURIComponent(text)}`));
  }

  /** Every release and media type of a package. */
  async releases(pkg: PackageName): Promise<RemoteView[]> {
    return z.array(RemoteViewSchema).parse(await this.json('GET', packagePath(pkg))).map(normalise);
  }

  /** One (release, media type): a query such as `default` or `>=1.0` is allowed. */
  async show(pkg: PackageName, release: string, mediaType: string): Promise<RemoteView> {
    return normalise(RemoteViewSchema.parse(await this.json('GET', `${packagePath(pkg)}/${encodeURIComponent(release)}/${encodeURIComponent(mediaType)}`)));
  }

  /** The gzip bytes of a release; the caller verifies them against the view. */
  async pull(pkg: PackageName, release: string, mediaType: string): Promise<Buffer> {
    return this.bytes(`${packagePath(pkg)}/${encodeURIComponent(release)}/${encodeURIComponent(mediaType)}/pull`);
  }

  async blob(pkg: PackageName, digest: string): Promise<Buffer> {
    return this.bytes(`${packagePath(pkg)}/blobs/sha256/${digest}`);
  }

  async push(pkg: PackageName, req: { blob: Uint8Array; release: string; mediaType: string; metadata?: Record<string, unknown> | null; force?: boolean }): Promise<void> {
    await this.json('POST', packagePath(pkg), {
      blob: Buffer.from(req.blob).toString('base64'),
      release: req.release,
      media_type: req.mediaType,
      package: `${pkg.namespace}/${pkg.name}`,
      ...(req.metadata ? { metadata: req.metadata } : {}),
      ...(req.force ? { force: true } : {}),
    });
  }

  async deleteRelease(pkg: PackageName, release: string, mediaType: string): Promise<void> {
    await this.json('DELETE', `${packagePath(pkg)}/${encodeURIComponent(release)}/${encodeURIComponent(mediaType)}`);
  }

  async channels(pkg: PackageName): Promise<ChannelView[]> {
    return z.array(ChannelSchema).parse(await this.json('GET', `${packagePath(pkg)}/channels`));
  }

  async channel(pkg: PackageName, name: string): Promise<ChannelView> {
    return ChannelSchema.parse(await this.json('GET', `${packagePath(pkg)}/channels/${encodeURIComponent(name)}`));
  }

  async addToChannel(pkg: PackageName, name: string, release: string): Promise<void> {
    await this.json('POST', `${packagePath(pkg)}/channels/${encodeURIComponent(name)}/${encodeURIComponent(release)}`);
  }

  async removeFromChannel(pkg: PackageName, name: string, release: string): Promise<void> {
    await this.json('DELETE', `${packagePath(pkg)}/channels/${encodeURIComponent(name)}/${encodeURIComponent(release)}`);
  }

  async deleteChannel(pkg: PackageName, name: string): Promise<void> {
    await this.json('DELETE', `${packagePath(pkg)}/channels/${encodeURIComponent(name)}`);
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private async json(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, authorize = true): Promise<unknown> {
    const res = await this.request(method, path, body, authorize);
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ConnectionError(`${method} ${this.server.host}${path}: HTTP ${res.statusCode}, the answer is not JSON`);
    }
    if (res.statusCode >= 400) throw errorFrom(res.statusCode, parsed, `${method} ${path}`);
    return parsed;
  }

  private async bytes(path: string): Promise<Buffer> {
    const res = await this.request('GET', path);
    const data = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode >= 400) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.toString('utf8'));
      } catch {
        parsed = undefined;
      }
      throw errorFrom(res.statusCode, parsed, `GET ${path}`);
    }
    return data;
  }

  private async request(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, authorize = true): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (authorize && this.options.token) headers.authorization = this.options.token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return this.transport.send(`${await this.baseUrl()}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)) } : {}),
      // Pushes are not retried by the transport: a retried push whose first try landed would say 409.
      replayable: method === 'GET',
      followRedirects: method === 'GET',
    });
  }
}

function packagePath(pkg: PackageName): string {
  return `/api/v1/packages/${encodeURIComponent(pkg.namespace)}/${encodeURIComponent(pkg.name)}`;
}

function normalise(v: z.infer<typeof RemoteViewSchema>): RemoteView {
  return {
    content: { digest: v.content.digest, mediaType: v.content.mediaType, size: v.content.size, urls: v.content.urls ?? [] },
    created_at: v.created_at,
    mediaType: v.mediaType,
    metadata: v.metadata ?? null,
    package: v.package,
    release: v.release,
    ...(v.channels ? { channels: v.channels } : {}),
  };
}

/** The server's envelope (either form: the reference's, or Quay's `{"error": {...}}`) as a CnrError. */
function errorFrom(status: number, body: unknown, what: string): CnrError {
  const candidate = (body as { error?: unknown } | undefined)?.error ?? body;
  const parsed = ErrorSchema.safeParse(candidate);
  if (parsed.success) return new CnrError(status, parsed.data.code, parsed.data.message, parsed.data.details ?? {});
  return new CnrError(status, status === 404 ? 'resource-not-found' : 'internal-error', `${what}: HTTP ${status}`);
}
