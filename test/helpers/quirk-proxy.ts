import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/**
 * What other registries do that registry:2 does not, switched on one by one in front of a real
 * registry:2 (a reverse proxy on a loopback port, plain HTTP).
 */
export interface QuirkOptions {
  /** Refuse manifest PUTs whose config.mediaType is one of these (Quay, GCR, Nexus, Artifactory with artifact types). */
  rejectConfigMediaTypes?: string[];
  /** Refuse OCI image index PUTs (registries that know only Docker manifest lists). */
  rejectOciIndex?: boolean;
  /** How a refusal is answered: 400 MANIFEST_INVALID (Quay, Docker Hub) or 415 Unsupported Media Type (GCR). */
  rejectStatus?: 400 | 415;
  /**
   * Repositories that exist; every other one answers 404 NAME_UNKNOWN, as Amazon ECR does for
   * repositories nobody created (it does not create them on push).
   */
  existingRepositories?: string[];
  /** Remove Docker-Content-Digest from every answer, or replace it with a wrong digest. */
  digestHeader?: 'strip' | 'corrupt';
  /** Demand HTTP Basic credentials on the registry's own origin (upload sessions elsewhere are not checked). */
  requireBasic?: { username: string; password: string };
  /**
   * Send upload sessions to another origin (a second listener, like registries that hand
   * uploads to a storage front end): upload `Location`s point there. What reaches it is logged
   * in `uploadLog`, with whether an Authorization header came along.
   */
  crossOriginUploads?: boolean;
  /**
   * Cross-repository mounts not supported: 202 opens an ordinary upload session instead (what
   * the spec allows), 404 refuses the request outright.
   */
  mountAnswer?: 202 | 404;
  /** Serve the registry's own origin over HTTPS with this certificate (PEM); upload sessions stay plain HTTP. */
  tls?: { cert: string; key: string };
}

export interface QuirkLogEntry {
  method: string;
  path: string;
  status: number;
  contentType?: string;
}

export interface QuirkProxy {
  /** `127.0.0.1:PORT`: use as the registry host. */
  host: string;
  log: QuirkLogEntry[];
  /** Requests that reached the upload origin (with `crossOriginUploads`). */
  uploadLog: (QuirkLogEntry & { authorization: boolean })[];
  stop(): Promise<void>;
}

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** `/v2/<name>/(blobs|manifests|tags)/...` -> name; undefined for `/v2/` and `_catalog`. */
function repositoryOf(path: string): string | undefined {
  const m = /^\/v2\/(.+?)\/(blobs|manifests|tags)\//.exec(path);
  return m?.[1];
}

export async function startQuirkProxy(upstream: string, options: QuirkOptions): Promise<QuirkProxy> {
  const log: QuirkLogEntry[] = [];
  const sockets = new Set<Socket>();
  const [upHost, upPort] = [upstream.slice(0, upstream.lastIndexOf(':')), Number(upstream.slice(upstream.lastIndexOf(':') + 1))];

  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    log.push({ method: req.method ?? '', path, status, contentType: req.headers['content-type'] });
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code, message }] }));
  };

  const uploadLog: (QuirkLogEntry & { authorization: boolean })[] = [];
  let uploadOrigin = '';
  const handle = (uploads: boolean) => async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (!uploads && options.requireBasic) {
      const expected = `Basic ${Buffer.from(`${options.requireBasic.username}:${options.requireBasic.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        req.resume();
        log.push({ method: req.method ?? '', path, status: 401 });
        res.writeHead(401, { 'www-authenticate': 'Basic realm="quirk-proxy"', 'content-type': 'application/json' })
          .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return;
      }
    }
    const repo = repositoryOf(path);
    if (repo !== undefined && options.existingRepositories && !options.existingRepositories.includes(repo)) {
      req.resume();
      refuse(req, res, 404, 'NAME_UNKNOWN', `The repository with name '${repo}' does not exist in the registry`);
      return;
    }
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    if (req.method === 'POST' && query.has('mount') && options.mountAnswer === 404) {
      req.resume();
      refuse(req, res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
      return;
    }
    if (req.method === 'POST' && query.has('mount') && options.mountAnswer === 202) req.url = path;
    let body: Buffer | undefined;
    if (req.method === 'PUT' && /\/manifests\//.test(path)) {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      body = Buffer.concat(chunks);
      let doc: { mediaType?: string; config?: { mediaType?: string } } = {};
      try {
        doc = JSON.parse(body.toString('utf8'));
      } catch {
        // let the registry say what is wrong with it
      }
      const type = req.headers['content-type'] ?? doc.mediaType;
      const status = options.rejectStatus ?? 400;
      const reject = (what: string) =>
        status === 415
          ? refuse(req, res, 415, 'UNSUPPORTED', `unsupported ${what}`)
          : refuse(req, res, 400, 'MANIFEST_INVALID', `manifest invalid: ${what} is not supported`);
      if (options.rejectOciIndex && (type === OCI_INDEX || doc.mediaType === OCI_INDEX)) return reject(`media type ${OCI_INDEX}`);
      if (doc.config?.mediaType && options.rejectConfigMediaTypes?.includes(doc.config.mediaType)) return reject(`config media type ${doc.config.mediaType}`);
    }
    const headers = { ...req.headers };
    // registry:2 writes absolute Locations from the Host it was asked at: always the front door.
    headers.host = front;
    if (uploads) delete headers.authorization;
    if (body) headers['content-length'] = String(body.length);
    const up = httpRequest({ host: upHost, port: upPort, method: req.method, path: req.url, headers }, (answer) => {
      const out = { ...answer.headers };
      if (options.digestHeader === 'strip') delete out['docker-content-digest'];
      if (options.digestHeader === 'corrupt' && out['docker-content-digest']) {
        out['docker-content-digest'] = `sha256:${createHash('sha256').update(`wrong ${out['docker-content-digest']}`).digest('hex')}`;
      }
      if (options.crossOriginUploads && typeof out.location === 'string' && out.location.includes('/blobs/uploads/')) {
        const loc = new URL(out.location, `http://${front}`);
        out.location = `${uploadOrigin}${loc.pathname}${loc.search}`;
      }
      const entry = { method: req.method ?? '', path, status: answer.statusCode ?? 0, contentType: req.headers['content-type'] };
      if (uploads) uploadLog.push({ ...entry, authorization: req.headers.authorization !== undefined });
      else log.push(entry);
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    });
    up.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502).end(`quirk proxy: ${err.message}`);
      else res.destroy();
    });
    if (body) up.end(body);
    else req.pipe(up);
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, handle(false)) : createServer(handle(false));
  const uploadServer: Server = createServer(handle(true));
  for (const srv of [server, uploadServer]) {
    srv.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
  }
  const listen = async (srv: Server) => {
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const address = srv.address();
    return `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  };
  const front = await listen(server);
  uploadOrigin = `http://${await listen(uploadServer)}`;
  return {
    host: front,
    log,
    uploadLog,
    async stop() {
      for (const s of sockets) s.destroy();
      await Promise.all([server, uploadServer].map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
    },
  };
}
