import { isDigest } from '../oci/digest.js';
import { AuthError, errorForResponse, RegistryError } from './errors.js';
import { carriesCredentials, checkLocation } from './origins.js';
import type { RetryBudget } from './retry.js';
import type { RegistrySession } from './session.js';
import { header, type Response, type SendOptions } from './transport.js';

export type Access = 'pull' | 'push' | 'delete';

export interface CallOptions extends SendOptions {
  /** The retry budget of the operation the request belongs to: every request of a Repository has one. */
  budget: RetryBudget;
  access: Access;
  /** Other repositories the request reads from (cross-repository mount). */
  alsoPull?: string[];
  /** Token scopes to ask for instead of the repository's (the catalog belongs to no repository). */
  scopes?: string[];
  /** `pathOrUrl` is a path from the origin (`/v2/`), not one under `/v2/<name>`. */
  absolutePath?: boolean;
}

/** The actions a token must grant, per kind of request (distribution asks `delete` for DELETE). */
const ACTIONS: Record<Access, string> = { pull: 'pull', push: 'pull,push', delete: 'delete' };

/**
 * One repository's end of the HTTP pipeline: the transport (connections, retries, redirects)
 * with authorization on top of it (the header a request needs, one 401 challenge answered),
 * error mapping, and the names used in messages. The blob and manifest stores speak through it,
 * each call with the retry budget of its operation (`opts.budget`, see retry.ts): the re-send
 * after a 401 challenge is not a retry, but its own retries draw from that budget too.
 */
export class Endpoint {
  readonly location: string;

  constructor(readonly session: RegistrySession, readonly registry: string, readonly name: string) {
    this.location = `${registry}/${name}`;
  }

  get transport(): RegistrySession['transport'] {
    return this.session.transport;
  }

  origin(): Promise<string> {
    return this.session.transport.origin(this.registry);
  }

  /** A Location header the registry sent, resolved against its origin (checked when it is called). */
  async resolveLocation(location: string): Promise<URL> {
    return new URL(location, await this.origin());
  }

  /** Send an API request with the authorization it needs, answering one 401 challenge. */
  async call(pathOrUrl: string, opts: CallOptions): Promise<Response> {
    const { transport, auth } = this.session;
    const origin = await this.origin();
    const absolute = /^https?:\/\//.test(pathOrUrl);
    const url = absolute ? pathOrUrl : `${origin}${opts.absolutePath ? pathOrUrl : `/v2/${this.name}${pathOrUrl}`}`;
    // An upload Location elsewhere gets no credentials, and never a downgrade to plain HTTP.
    const target = new URL(url);
    if (absolute) checkLocation(target, origin, this.location);
    const ours = carriesCredentials(target, origin);
    const scopes = opts.scopes ?? (this.name ? [`repository:${this.name}:${ACTIONS[opts.access]}`, ...(opts.alsoPull ?? []).map((n) => `repository:${n}:pull`)] : []);
    const sent = ours ? await auth.authorization(this.registry, scopes) : undefined;
    const send = (authorization: string | undefined): Promise<Response> =>
      transport.send(url, { ...opts, headers: { ...opts.headers, ...(authorization ? { authorization } : {}) } });
    const res = await send(sent);
    const replayable = !(opts.body && !(opts.body instanceof Uint8Array));
    if (res.statusCode !== 401 || !replayable || !ours) return res;
    const next = await auth.challenged(this.registry, header(res, 'www-authenticate'), scopes, sent);
    if (!next) return res;
    await res.body.dump();
    const retried = await send(next);
    // Refused again with what the registry just asked for: say so, do not ask again.
    if (retried.statusCode !== 401) return retried;
    await retried.body.dump();
    throw await auth.refused(this.registry, header(retried, 'www-authenticate'), scopes);
  }

  /** Throw the error a failed answer stands for (its body read for the registry's error codes). */
  async fail(res: Response, what: string, action: 'read' | 'write' | 'delete' = 'read'): Promise<never> {
    const text = res.statusCode === 404 || res.statusCode >= 400 ? await res.body.text().catch(() => '') : '';
    throw errorForResponse(what, res.statusCode, text, action);
  }

  /** `registry/name@digest` or `registry/name:tag`, for messages. */
  describe(reference: string): string {
    return isDigest(reference) ? `${this.location}@${reference}` : `${this.location}:${reference}`;
  }
}

/** GET /v2/ with credentials: proves the registry answers and accepts them. */
export async function ping(session: RegistrySession, registry: string): Promise<void> {
  const res = await new Endpoint(session, registry, '').call('/v2/', { method: 'GET', access: 'pull', absolutePath: true, budget: session.transport.budget() });
  await res.body.dump();
  if (res.statusCode === 401) throw new AuthError(`${registry}: credentials missing or refused`, 401);
  if (res.statusCode !== 200) throw new RegistryError(`${registry}: /v2/ answered HTTP ${res.statusCode}`, res.statusCode);
}

export function contentType(res: Response): string | undefined {
  return header(res, 'content-type')?.split(';')[0]?.trim();
}

