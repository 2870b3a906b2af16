import { z } from 'zod';
import { invalidParameters, invalidUsage } from '../model/errors.js';
import { parseMediaType } from '../model/names.js';

/** A push as the API takes it: `{blob: base64, release, media_type?, metadata?, force?}`. */
export interface PushBody {
  blob: Uint8Array;
  release: string;
  mediaType: string;
  metadata: Record<string, unknown> | null;
  force: boolean;
}

const Flag = z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False', '1', '0'])]);

const Schema = z.object({
  blob: z.string({ error: 'blob: expected the base64 text of the .tar.gz' }),
  release: z.string({ error: 'release: expected a SemVer version string' }),
  media_type: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).nullable().optional(),
  force: Flag.optional(),
  package: z.string().optional(),
});

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The body is JSON whatever Content-Type says: the cnr-server README's demo posts it with curl's
 * `-d`, which sends `application/x-www-form-urlencoded`. `force` may also come in the query.
 */
export function parsePushBody(raw: Buffer | undefined, queryForce: unknown): PushBody {
  let json: unknown;
  try {
    json = JSON.parse((raw ?? Buffer.alloc(0)).toString('utf8'));
  } catch (err) {
    throw invalidUsage(`request body is not JSON (${(err as Error).message.split('\n')[0]})`);
  }
  const parsed = Schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || 'body';
    throw invalidParameters(issue.message.startsWith(`${field}:`) ? issue.message : `${field}: ${issue.message}`, { field });
  }
  const body = parsed.data;
  const text = body.blob.replace(/\s+/g, '');
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64.test(text)) throw invalidParameters('blob: not valid base64', { field: 'blob' });
  return {
    blob: Buffer.from(text, 'base64'),
    release: body.release,
    mediaType: parseMediaType(body.media_type ?? 'kpm'),
    metadata: body.metadata ?? null,
    force: flag(body.force) || flag(queryForce),
  };
}

function flag(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  const parsed = Flag.safeParse(value);
  if (!parsed.success) throw invalidParameters(`force: expected true or false, got ${JSON.stringify(value)}`, { field: 'force' });
  return parsed.data === true || parsed.data === 'true' || parsed.data === 'True' || parsed.data === '1';
}
