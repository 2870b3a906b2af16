import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { readAll } from '../../content/read.js';
import { CnrError, invalidParameters } from '../model/errors.js';
import { parseChannelName, parseMediaType, parsePackageName, type PackageName } from '../model/names.js';
import { parseRelease } from '../model/releases.js';
import { channelView, manifestView, pushOrder, releaseView, type ChannelRecord, type ListEntry, type ReleaseRecord } from '../model/views.js';
import type { BlobContent, CnrStore } from '../store/store.js';
import { loginFields, loginToken, type Htpasswd } from './auth.js';
import { parsePushBody } from './push-body.js';

export interface ApiOptions {
  store: CnrStore;
  /** Writes need these users' credentials; without, writes are anonymous. */
  users?: Htpasswd;
  readOnly: boolean;
  version: string;
}

type Params = Record<string, string>;
type Handler = (req: FastifyRequest<{ Params: Params; Querystring: Record<string, string | undefined> }>, reply: FastifyReply) => Promise<unknown>;

const METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const HEX = /^[a-f0-9]{64}$/;

/**
 * The CNR API, as the reference cnr-server and Quay's /cnr answer it (see API.md). Each route
 * validates its input, calls the store once, and answers; errors are CnrErrors, turned into the
 * envelope by the server's error handler. A method a path does not take is 405, not 404.
 */
export function registerApi(app: FastifyInstance, opts: ApiOptions): void {
  const { store } = opts;
  // Writes are checked before the body is read: an anonymous client cannot make us read 64 MiB.
  const guard = async (req: FastifyRequest): Promise<void> => {
    if (opts.readOnly) throw new CnrError(403, 'forbidden', 'this server is read-only');
    if (opts.users) (req as { user?: string }).user = await opts.users.authenticate(req.headers.authorization);
  };
  const resource = (url: string, handlers: Partial<Record<HTTPMethods, Handler>>, options: { open?: boolean } = {}) => {
    const allowed = Object.keys(handlers) as HTTPMethods[];
    for (const method of allowed) {
      const writes = method !== 'GET' && !options.open;
      app.route({ method, url, handler: handlers[method] as never, ...(writes ? { onRequest: guard } : {}) });
    }
    const others = METHODS.filter((m) => !allowed.includes(m));
    const allow = [...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])].join(', ');
    app.route({
      method: others,
      url,
      handler: async (req, reply) => {
        reply.header('allow', allow);
        throw new CnrError(405, 'invalid-usage', `${req.method} is not allowed on ${req.routeOptions.url}; allowed: ${allow}`);
      },
    });
  };
  const listAnswers = new AnswerCache();
  const views = new ViewCache();

  resource('/version', { GET: async () => ({ 'cnr-api': '0.2.7', 'cnab-oci': opts.version }) });

  resource('/api/v1/users/login', {
    POST: async (req) => {
      const { user, password } = loginFields(parseJsonBody(req.body));
      if (opts.users && !(await opts.users.check(user, password))) throw new CnrError(401, 'unauthorized-access', 'invalid username or password');
      return { token: loginToken(user, password) };
    },
  }, { open: true });

  resource('/api/v1/packages', {
    GET: async (req, reply) => {
      const { namespace, query, media_type: mediaType } = req.query;
      const listing = await store.listPackages();
      const key = JSON.stringify([namespace, query, mediaType]);
      const body = listAnswers.get(listing.version, key, () => {
        const wanted = mediaType === undefined ? undefined : parseMediaType(mediaType);
        return listing.entries.filter((e) => matches(e, namespace, query, wanted));
      });
      return reply.type('application/json').send(body);
    },
  });

  resource('/api/v1/packages/search', {
    GET: async (req) => {
      const q = req.query.q ?? '';
      // A plain substring: the reference compiles q as a regex and fails on `(` or `*`.
      return (await store.listPackages()).entries.map((e) => e.name).filter((n) => n.includes(q));
    },
  });

  const P = '/api/v1/packages/:namespace/:name';
  resource(P, {
    GET: async (req) => {
      const record = await store.package(pkgOf(req.params));
      const wanted = req.query.media_type === undefined ? undefined : parseMediaType(req.query.media_type);
      return record.releases.filter((r) => wanted === undefined || r.mediaType === wanted).map(manifestView);
    },
    POST: async (req) => {
      const pkg = pkgOf(req.params);
      const body = parsePushBody(req.body as Buffer | undefined, req.query.force);
      await store.push(pkg, body);
      return { status: 'ok' };
    },
  });

  resource(`${P}/channels`, { GET: async (req) => (await store.channels(pkgOf(req.params))).map(channelView) });
  resource(`${P}/channels/:channel`, {
    GET: async (req) => channelView(await store.channel(pkgOf(req.params), parseChannelName(req.params.channel!))),
    DELETE: async (req) => {
      const pkg = pkgOf(req.params);
      const channel = parseChannelName(req.params.channel!);
      await store.deleteChannel(pkg, channel);
      return { channel, package: pkg.full, action: 'delete' };
    },
  });
  resource(`${P}/channels/:channel/:release`, {
    POST: async (req) => {
      const pkg = pkgOf(req.params);
      const channel = parseChannelName(req.params.channel!);
      const release = parseRelease(req.params.release!);
      return channelView(await store.addToChannel(pkg, channel, release));
    },
    DELETE: async (req) => {
      const pkg = pkgOf(req.params);
      const channel = parseChannelName(req.params.channel!);
      const release = parseRelease(req.params.release!);
      await store.removeFromChannel(pkg, channel, release);
      return { status: 'deleted', package: pkg.full, name: channel, release };
    },
  });

  resource(`${P}/blobs/sha256/:hex`, {
    GET: async (req, reply) => {
      const pkg = pkgOf(req.params);
      const hex = req.params.hex!;
      if (!HEX.test(hex)) throw invalidParameters(`invalid digest ${JSON.stringify(hex)}: expected 64 lowercase hex digits`, { digest: hex });
      const blob = await store.blobByDigest(pkg, hex);
      if (req.query.format === 'json') return { package: pkg.full, blob: await base64(blob), release: hex, filename: blob.filename };
      return sendBlob(reply, blob);
    },
  });

  resource(`${P}/:release`, {
    GET: async (req) => {
      const { release } = await store.release(pkgOf(req.params), req.params.release!);
      return pushOrder(release.records).map(manifestView);
    },
  });
  resource(`${P}/:release/:mediaType`, {
    GET: async (req, reply) => {
      const { record, channels } = await store.record(pkgOf(req.params), req.params.release!, mediaTypeParam(req.params.mediaType!));
      return reply.type('application/json').send(views.releaseView(record, channels));
    },
    DELETE: async (req) => {
      const pkg = pkgOf(req.params);
      const mediaType = mediaTypeParam(req.params.mediaType!);
      const record = await store.deleteRelease(pkg, req.params.release!, mediaType);
      return { status: 'deleted', package: pkg.full, release: record.release };
    },
  });
  const pull: Handler = async (req, reply) => {
    const pkg = pkgOf(req.params);
    const { record } = await store.record(pkg, req.params.release!, mediaTypeParam(req.params.mediaType!));
    const blob = await store.blob(pkg, record);
    if (req.query.format === 'json' || req.url.split('?')[0]!.endsWith('/json')) {
      return { package: pkg.full, blob: await base64(blob), release: record.release, media_type: record.mediaType, filename: blob.filename };
    }
    return sendBlob(reply, blob);
  };
  resource(`${P}/:release/:mediaType/pull`, { GET: pull });
  resource(`${P}/:release/:mediaType/pull/json`, { GET: pull });
}

function pkgOf(params: Params): PackageName {
  return parsePackageName(params.namespace!, params.name!);
}

function mediaTypeParam(value: string): string {
  return value === '-' ? '-' : parseMediaType(value);
}

function matches(e: ListEntry, namespace: string | undefined, query: string | undefined, mediaType: string | undefined): boolean {
  if (namespace !== undefined && namespace !== '' && !e.name.startsWith(`${namespace}/`)) return false;
  if (query !== undefined && !e.name.includes(query)) return false;
  return mediaType === undefined || e.manifests.includes(mediaType);
}

function sendBlob(reply: FastifyReply, blob: BlobContent): FastifyReply {
  reply.header('content-disposition', `attachment; filename=${blob.filename}`);
  reply.header('content-length', String(blob.record.size));
  return reply.type('application/x-gzip').send(blob.body);
}

async function base64(blob: BlobContent): Promise<string> {
  const bytes = blob.body instanceof Uint8Array ? blob.body : await readAll(blob.body as Readable, blob.record.size);
  return Buffer.from(bytes).toString('base64');
}

function parseJsonBody(raw: unknown): unknown {
  try {
    return JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : '');
  } catch {
    throw new CnrError(400, 'invalid-usage', 'request body is not JSON');
  }
}

/**
 * The one-release view serialized, per record (records come from the store's content cache, so
 * the same object while its release is unchanged) and the channels that name it current: the
 * most requested answer is built once, not once per request.
 */
class ViewCache {
  private readonly bodies = new WeakMap<ReleaseRecord, { channels: string; body: string }>();

  releaseView(record: ReleaseRecord, channels: readonly ChannelRecord[]): string {
    const current = channels.filter((c) => c.current === record.release).map((c) => c.name).join('\n');
    const known = this.bodies.get(record);
    if (known?.channels === current) return known.body;
    const body = JSON.stringify(releaseView(record, channels));
    this.bodies.set(record, { channels: current, body });
    return body;
  }
}

/**
 * Serialized answers of the list route by query, valid for one version of the listing: a list
 * of 10,000 packages is megabytes of JSON, built once per change rather than once per request.
 */
class AnswerCache {
  private version = -1;
  private readonly answers = new Map<string, Buffer>();

  get(version: number, key: string, build: () => unknown): Buffer {
    if (version !== this.version) {
      this.answers.clear();
      this.version = version;
    }
    let body = this.answers.get(key);
    if (!body) {
      body = Buffer.from(JSON.stringify(build()));
      if (this.answers.size >= 64) this.answers.clear();
      this.answers.set(key, body);
    }
    return body;
  }
}
