import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parsePackageName } from '../model/names.js';
import type { CnrStore } from '../store/store.js';
import { CnrError } from '../model/errors.js';
import { sendError, toCnrError } from './errors.js';
import { PAGE_CSP } from './html-frame.js';
import { renderError, renderIndex, renderNotFound, renderPackage } from './html.js';

export interface BrowseOptions {
  store: CnrStore;
  /** The server refuses writes (the empty page then shows no push command). */
  readOnly?: boolean;
  /** Writes need credentials (the push command then carries `-u USER:PASSWORD`). */
  writesNeedCredentials?: boolean;
}

type Query = Record<string, string | string[] | undefined>;

/**
 * The browsable pages: `GET /` (the packages, a search, a namespace filter) and
 * `GET /:namespace/:name` (a package's releases, channels and the commands that fetch them;
 * also what appr's discovery reads, with `?appr-discovery=1`). Server-rendered HTML from
 * html.ts; failures are HTML pages too (these are for browsers; the API answers JSON).
 */
export function registerBrowse(app: FastifyInstance, opts: BrowseOptions): void {
  const { store } = opts;
  const writes = { readOnly: opts.readOnly ?? false, credentials: opts.writesNeedCredentials ?? false };

  app.get('/', async (req, reply) => {
    const host = hostOf(req);
    try {
      const query = req.query as Query;
      const q = first(query.q);
      const namespace = first(query.namespace);
      const { entries } = await store.listPackages();
      return sendPage(reply, 200, renderIndex({ host, entries, filter: { ...(q ? { q } : {}), ...(namespace ? { namespace } : {}) }, writes }));
    } catch (err) {
      return sendFailure(reply, host, err);
    }
  });

  app.get('/:namespace/:name', async (req, reply) => {
    const host = hostOf(req);
    const { namespace, name } = req.params as { namespace: string; name: string };
    try {
      const pkg = parsePackageName(namespace, name);
      const record = await store.package(pkg);
      const ociRepository = store.repositories.ociRepository(pkg);
      return sendPage(reply, 200, renderPackage({ host, record, ...(ociRepository ? { ociRepository } : {}) }));
    } catch (err) {
      const failure = toCnrError(err, 0);
      // An invalid name is a package that cannot exist: the same 404 as a missing one. A client
      // that does not ask for HTML (an API client on a wrong path) gets the API's envelope.
      if (failure.status === 404 || failure.status === 422) {
        if (!/text\/html/.test(req.headers.accept ?? '')) return sendError(reply, new CnrError(404, 'resource-not-found', `no such resource: GET ${req.url.split('?')[0]}`));
        return sendPage(reply, 404, renderNotFound(host, `${namespace}/${name}`));
      }
      return sendFailure(reply, host, err);
    }
  });
}

function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .code(status)
    .header('content-security-policy', PAGE_CSP)
    .header('x-content-type-options', 'nosniff')
    .type('text/html; charset=utf-8')
    .send(html);
}

function sendFailure(reply: FastifyReply, host: string, err: unknown): FastifyReply {
  const failure = toCnrError(err, 0);
  if (failure.status === 503) reply.header('retry-after', '1');
  return sendPage(reply, failure.status, renderError(host, failure.status, failure.status === 503 ? 'Storage unavailable' : 'Error', failure.message));
}

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * How the client reached this server: its Host header when that is a plain host[:port], else
 * the address the connection came in on (a Host header is the client's to choose; it is escaped
 * on the page either way, this keeps the commands shown sensible).
 */
function hostOf(req: FastifyRequest): string {
  const header = req.headers.host;
  if (header && HOST.test(header)) return header;
  let address = req.socket.localAddress ?? '127.0.0.1';
  if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice('::ffff:'.length);
  return `${address.includes(':') ? `[${address}]` : address}:${req.socket.localPort ?? 80}`;
}

function first(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? undefined : v;
}
