import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { InputError } from '../../oci/errors.js';
import { CnrError } from '../model/errors.js';

/**
 * Users from an htpasswd file, as registry:2 reads it: `user:bcrypt-hash` lines (`$2y$`, `$2a$`,
 * `$2b$`). Clients send `Authorization: Basic base64(user:pass)`, or Quay's token from
 * `POST /api/v1/users/login` unchanged (`basic base64(user:pass)`): the same thing.
 */
export class Htpasswd {
  // bcrypt costs tens of milliseconds by design: a header that verified is remembered (by its
  // hash, never the text) for a minute, so a client sending it on every request pays once.
  private readonly verified = new Map<string, { user: string; until: number }>();

  private constructor(private readonly users: Map<string, string>) {}

  static parse(text: string, file: string): Htpasswd {
    const users = new Map<string, string>();
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1).trim();
      if (colon <= 0 || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
        throw new InputError(`${file}:${i + 1}: expected user:bcrypt-hash (htpasswd -B); other hash types are not accepted`);
      }
      users.set(user, hash);
    });
    return new Htpasswd(users);
  }

  static async load(file: string): Promise<Htpasswd> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new InputError(`${file}: cannot read htpasswd file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    return Htpasswd.parse(text, file);
  }

  /** The user an `Authorization` header proves, or a 401 saying why not. */
  async authenticate(header: string | undefined): Promise<string> {
    if (!header) throw unauthorized('credentials required for this request');
    const key = createHash('sha256').update(header).digest('hex');
    const known = this.verified.get(key);
    if (known && known.until > Date.now()) return known.user;
    const { user, password } = parseBasic(header);
    if (!(await this.check(user, password))) throw unauthorized('invalid username or password');
    if (this.verified.size >= 1000) this.verified.clear();
    this.verified.set(key, { user, until: Date.now() + 60_000 });
    return user;
  }

  async check(user: string, password: string): Promise<boolean> {
    const hash = this.users.get(user);
    // Compare against a hash even for unknown users, so timing does not tell which users exist.
    const ok = await bcrypt.compare(password, hash ?? DUMMY_HASH);
    return ok && hash !== undefined;
  }
}

const DUMMY_HASH = '$2b$10$f3k1Eoa569eVgcmMk3lwX.mNk0o26A5.Vn6jhR7xkkGDMa6JALk.K';

export function unauthorized(message: string): CnrError {
  return new CnrError(401, 'unauthorized-access', message);
}

/** `Basic <b64>` or Quay's `basic <b64>`: the scheme is case-insensitive (RFC 7617). */
export function parseBasic(header: string): { user: string; password: string } {
  const m = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw unauthorized('Authorization must be Basic credentials (or the token from /api/v1/users/login)');
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Quay's login answer: the token clients send back as `Authorization`. */
export function loginToken(user: string, password: string): string {
  return `basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export function loginFields(body: unknown): { user: string; password: string } {
  const u = (body as { user?: { username?: unknown; password?: unknown } } | null)?.user;
  if (typeof u?.username !== 'string' || typeof u.password !== 'string' || u.username === '') {
    throw new CnrError(400, 'invalid-usage', 'expected {"user": {"username": ..., "password": ...}}');
  }
  return { user: u.username, password: u.password };
}

