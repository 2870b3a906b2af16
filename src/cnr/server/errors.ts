import type { FastifyReply } from 'fastify';
import { CnabOciError, InputError, isTransientError } from '../../oci/errors.js';
import { AuthError } from '../../registry/errors.js';
import { CnrError } from '../model/errors.js';

/** Seconds a client is asked to wait after a 503: the storage failed in a way a retry may cure. */
const RETRY_AFTER_SECONDS = 1;

/**
 * Every failure as the API's envelope `{code, message, details}`: a CnrError as it is, fastify's
 * own 4xx (body too large, bad headers) with their status, a storage failure that may pass as
 * 503 with Retry-After, anything else as 500 without internals.
 */
export function toCnrError(err: unknown, maxBody: number): CnrError {
  if (err instanceof CnrError) return err;
  const fastifyError = err as { code?: string; statusCode?: number; message?: string };
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fastifyError.statusCode === 413) {
    return new CnrError(413, 'invalid-usage', `request body is larger than ${maxBody} bytes (--max-body)`, { limit: maxBody });
  }
  if (typeof fastifyError.code === 'string' && fastifyError.code.startsWith('FST_') && (fastifyError.statusCode ?? 500) < 500) {
    return new CnrError(fastifyError.statusCode ?? 400, 'invalid-usage', firstLine(fastifyError.message ?? 'bad request'));
  }
  if (err instanceof InputError) return new CnrError(400, 'invalid-usage', firstLine(err.message));
  if (isTransientError(err)) return new CnrError(503, 'service-unavailable', `storage unavailable, try again: ${firstLine((err as Error).message)}`);
  if (err instanceof AuthError) return new CnrError(500, 'internal-error', `storage refused this server's credentials: ${firstLine(err.message)}`);
  if (err instanceof CnabOciError) return new CnrError(500, 'internal-error', firstLine(err.message));
  return new CnrError(500, 'internal-error', 'internal error');
}

export function sendError(reply: FastifyReply, err: CnrError): FastifyReply {
  if (err.status === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  if (err.status === 401) reply.header('www-authenticate', 'Basic realm="cnr"');
  return reply.code(err.status).type('application/json').send(JSON.stringify(err.toJSON()));
}

function firstLine(text: string): string {
  return text.split('\n')[0]!;
}
