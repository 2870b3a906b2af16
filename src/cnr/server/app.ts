import Fastify, { type FastifyInstance } from 'fastify';
import { isLoopbackHost } from '../../oci/reference.js';
import { InputError } from '../../oci/errors.js';
import { CnrError } from '../model/errors.js';
import type { CnrStore } from '../store/store.js';
import { AccessLog, loggablePath, type LogFormat } from './access-log.js';
import type { Htpasswd } from './auth.js';
import { sendError, toCnrError } from './errors.js';
import { registerApi } from './routes.js';
import { registerBrowse } from './browse.js';
import { DEFAULT_MAX_BODY } from './limits.js';

export interface CnrServerOptions {
  store: CnrStore;
  /** Users whose credentials writes need; without, writes are anonymous. */
  users?: Htpasswd;
  /** Refuse every write (403). */
  readOnly?: boolean;
  /** Largest request body in bytes (default 64 MiB): a larger push is 413. */
  maxBodyBytes?: number;
  /** Access log format; `false` for none (default text on stderr). */
  accessLog?: LogFormat | false;
  /** Where access-log lines go (default stderr). */
  logStream?: NodeJS.WritableStream;
  /** This program's version, for `/version`. */
  version?: string;
}

export { DEFAULT_MAX_BODY };

/**
 * The CNR server as a function: a fastify instance serving the CNR API at `/api/v1/...` (as
 * cnr-server up to 0.2.6) and `/cnr/api/v1/...` (0.2.7 and Quay), and a browsable page at `/`.
 * Call `listen()` (or `inject()` in tests); `close()` stops accepting and finishes what is in
 * flight.
 */
export function createCnrServer(options: CnrServerOptions): FastifyInstance {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const app = Fastify({
    logger: false,
    bodyLimit: maxBody,
    // Keep-alive connections that are idle close on shutdown; busy ones finish their request.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    // A malformed URL (`%zz`) or an over-long segment is answered by the router, outside the
    // error handler: in the API's envelope as well.
    frameworkErrors: (err, req, reply) => {
      // No hook runs for these: the access log line is written here.
      const started = performance.now();
      reply.raw.once('finish', () => log?.write({ time: new Date(), remote: req.ip, method: req.method, path: loggablePath(req.url), status: reply.statusCode, durationMs: performance.now() - started }));
      void sendError(reply, toCnrError(err, maxBody));
    },
  });

  // The body is read as bytes whatever the Content-Type: curl's -d says form-urlencoded for JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const log = options.accessLog === false ? undefined : new AccessLog(options.accessLog ?? 'text', options.logStream);
  if (log) {
    app.addHook('onResponse', async (req, reply) => {
      log.write({
        time: new Date(),
        remote: req.ip,
        method: req.method,
        path: loggablePath(req.url),
        status: reply.statusCode,
        durationMs: reply.elapsedTime,
        ...((req as { user?: string }).user ? { user: (req as { user?: string }).user } : {}),
      });
    });
    app.addHook('onClose', async () => log.flush());
  }

  // Connections busy when close() begins are not idle, so they stay open after their answer and
  // shutdown would wait for the client to hang up (undici keeps them for the 72 s offered). From
  // then on every answer says Connection: close, and Node ends the connection with it.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  app.setErrorHandler((err, _req, reply) => sendError(reply, toCnrError(err, maxBody)));
  app.setNotFoundHandler((req, reply) => sendError(reply, new CnrError(404, 'resource-not-found', `no such resource: ${req.method} ${req.url.split('?')[0]}`)));

  const api = { store: options.store, readOnly: options.readOnly ?? false, version: options.version ?? '0.0.0', ...(options.users ? { users: options.users } : {}) };
  app.register(async (scope) => registerApi(scope, api));
  app.register(async (scope) => registerApi(scope, api), { prefix: '/cnr' });
  app.register(async (scope) => registerBrowse(scope, { store: options.store, readOnly: api.readOnly, writesNeedCredentials: options.users !== undefined }));
  return app;
}

export interface ExposureOptions {
  host: string;
  users?: Htpasswd;
  readOnly?: boolean;
  anonymousWrites?: boolean;
}

/** A server reachable beyond this machine takes anonymous writes only when told to. */
export function checkExposure(o: ExposureOptions): void {
  if (isLoopbackHost(o.host) || o.users || o.readOnly || o.anonymousWrites) return;
  throw new InputError(
    `refusing to listen on ${o.host} with anonymous writes: anyone who reaches it could push and delete packages; give --htpasswd FILE, --read-only, or --anonymous-writes`,
  );
}
