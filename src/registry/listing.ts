import { NotFoundError } from '../oci/errors.js';
import { AuthError, ConnectionError, RegistryError } from './errors.js';
import { Endpoint, type CallOptions } from './http.js';
import { checkPageLink } from './origins.js';
import { rereading } from './retry.js';
import type { RegistrySession } from './session.js';

/** Entries per page of tags/list and _catalog: distribution refuses more (its catalog.maxentries) with 400. */
const DEFAULT_PAGE_SIZE = 1000;

/** The token scope of the catalog (distribution's `registry:catalog:*`). */
const CATALOG_SCOPE = 'registry:catalog:*';

export interface ListOptions {
  /** Entries asked for per page (`n`); default 1000. */
  pageSize?: number;
}

export interface CatalogOptions extends ListOptions {
  /** Only this repository and those under `prefix/` (`apps/team`: `apps/team`, `apps/team/web`, not `apps/teamx`). */
  prefix?: string;
}

/**
 * List every tag, following the `Link` header's pages (`pageSize` tags a page; distribution
 * 2.8 ignores it and sends one page, distribution 3 and most others page).
 */
export async function listTags(http: Endpoint, options: ListOptions = {}): Promise<string[]> {
  const n = pageSize(options.pageSize);
  return list(http, `/v2/${http.name}/tags/list?n=${n}`, 'tags', { method: 'GET', access: 'pull' }, `${http.location} tags`);
}

/**
 * The repositories of a registry (GET /v2/_catalog, every page), or those under `prefix`.
 * Filtered here: the API has no prefix query, and not every registry sorts its answer.
 */
export async function catalog(session: RegistrySession, registry: string, options: CatalogOptions = {}): Promise<string[]> {
  const http = new Endpoint(session, registry, '');
  const n = pageSize(options.pageSize);
  const what = `${registry} catalog`;
  let names: string[];
  try {
    names = await list(http, `/v2/_catalog?n=${n}`, 'repositories', { method: 'GET', access: 'pull', scopes: [CATALOG_SCOPE] }, what);
  } catch (err) {
    // Docker Hub, GHCR, ECR and others have no catalog, or none for these credentials:
    // 404, or 401/403 even with a fresh token for registry:catalog:*.
    if (err instanceof NotFoundError || (err instanceof AuthError && (err.status === 401 || err.status === 403))) throw catalogUnavailable(registry, what, err);
    throw err;
  }
  const prefix = options.prefix?.replace(/\/+$/, '');
  if (!prefix) return names;
  return names.filter((name) => name === prefix || name.startsWith(`${prefix}/`));
}

/**
 * Every item of a paginated list (`tags`, `repositories`): GET `first` (a path from the
 * origin), then each `Link: <...>; rel="next"` page, resolved against the page it came with.
 */
async function list(http: Endpoint, first: string, key: 'tags' | 'repositories', opts: Omit<CallOptions, 'budget'>, what: string): Promise<string[]> {
  const items: string[] = [];
  const seen = new Set<string>();
  let page: URL | undefined = new URL(first, await http.origin());
  while (page) {
    // A registry whose links go round in circles would otherwise be listed forever.
    if (seen.has(page.href)) throw new RegistryError(`${what}: the registry's next-page link leads back to a page already read (${page.pathname}${page.search})`, 0);
    seen.add(page.href);
    const current: URL = page;
    // A page cut short or damaged on the way does not parse: it is read again, like a manifest.
    // Each page is an operation of its own: a long list does not share one budget.
    const budget = http.transport.budget();
    const { body, link } = await rereading(http.transport, budget, what, async () => {
      const res = await http.call(current.href, { ...opts, budget });
      if (res.statusCode !== 200) await http.fail(res, what);
      const text = await res.body.text();
      try {
        return { body: JSON.parse(text) as Record<string, unknown> | null, link: res.headers.link };
      } catch {
        throw new ConnectionError(`${what}: the registry's answer is not JSON (cut short or damaged on the way?)`);
      }
    });
    const values = body?.[key];
    if (Array.isArray(values)) items.push(...values.filter((v): v is string => typeof v === 'string'));
    page = nextPage(link, current, what);
  }
  return items;
}

/**
 * The next page named by a `Link` header (`<url>; rel="next"`, RFC 8288), resolved against the
 * page it came with: distribution sends an absolute path (`</v2/acme/app/tags/list?last=x&n=2>`),
 * others a full URL. A link to another origin is refused: the credentials are for this one.
 */
export function nextPage(link: string | string[] | undefined, page: URL, what: string): URL | undefined {
  const value = Array.isArray(link) ? link.join(', ') : link;
  if (!value) return undefined;
  for (const m of value.matchAll(/<([^>]*)>([^<]*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(m[2]!);
    if (!(rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/).includes('next')) continue;
    let next: URL;
    try {
      next = new URL(m[1]!, page);
    } catch {
      throw new RegistryError(`${what}: the registry sent a next-page link that is not a URL (${JSON.stringify(m[1])})`, 0);
    }
    checkPageLink(next, page, what);
    return next;
  }
  return undefined;
}

function pageSize(value: number | undefined): number {
  const n = value ?? DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`page size must be a positive integer, not ${value}`);
  return n;
}

/** A registry without a catalog, or without one for these credentials: one error, whatever the status. */
function catalogUnavailable(registry: string, what: string, err: NotFoundError | AuthError): RegistryError {
  const status = err instanceof AuthError ? err.status : 404;
  const reason = [`${what}: `, `${registry}: `].reduce((m, p) => (m.startsWith(p) ? m.slice(p.length) : m), err.message);
  const message = `${registry}: the registry does not offer the catalog API${status === 404 ? '' : ' to these credentials'} (GET /v2/_catalog: HTTP ${status}, ${reason})`;
  const codes = err instanceof AuthError ? err.codes : [];
  return status === 404 ? new RegistryError(message, status, codes, { cause: err }) : new AuthError(message, status, codes, { cause: err });
}
