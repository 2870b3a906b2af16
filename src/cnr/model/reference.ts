import { InputError } from '../../oci/errors.js';
import { parseChannelName, parsePackageName, type PackageName } from './names.js';
import { isRelease } from './releases.js';

/**
 * A package reference as the appr CLI wrote them: `[host[:port]/]namespace/name[@release|:channel|@sha256:hex]`.
 * A server may also be a URL (`https://old.example.com/cnr`), which fixes the scheme and base path.
 */
export interface CnrReference {
  server: CnrServerAddress;
  pkg: PackageName;
  release?: string;
  channel?: string;
  /** CNR digest (hex) of a blob. */
  digest?: string;
}

export interface CnrServerAddress {
  /** `host[:port]` */
  host: string;
  /** Given by a URL: `https` or `http`; otherwise found as the bridge does (HTTPS, then HTTP for loopback and insecure hosts). */
  scheme?: 'https' | 'http';
  /** Base path given by a URL (`/cnr`, `''`); otherwise discovered. */
  prefix?: string;
}

export const DEFAULT_SERVER = 'localhost:5000';

const HOST = /^(?:localhost|\[[0-9a-fA-F:]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9.-]+)(?::\d+)?$/;

/** `localhost:5000`, `registry.example.com`, `https://old.example.com/cnr`. */
export function parseServer(value: string): CnrServerAddress {
  const url = /^(https?):\/\/([^/]+)(\/.*)?$/.exec(value);
  if (url) {
    const prefix = (url[3] ?? '').replace(/\/+$/, '');
    if (!HOST.test(url[2]!)) throw new InputError(`invalid server ${JSON.stringify(value)}: bad host`);
    return { host: url[2]!, scheme: url[1] as 'https' | 'http', prefix };
  }
  const host = value.replace(/\/+$/, '');
  if (!HOST.test(host)) throw new InputError(`invalid server ${JSON.stringify(value)}: expected host[:port] or a URL such as https://host/cnr`);
  return { host };
}

export function parseCnrReference(value: string): CnrReference {
  const bad = (why: string) => new InputError(`invalid package reference ${JSON.stringify(value)}: ${why} (expected [host[:port]/]namespace/name[@release|:channel])`);
  let rest = value;
  let server: CnrServerAddress = { host: DEFAULT_SERVER };
  const url = /^(https?:\/\/[^/]+(?:\/cnr)?)\/(.*)$/.exec(value);
  if (url) {
    server = parseServer(url[1]!);
    rest = url[2]!;
  } else {
    const parts = value.split('/');
    if (parts.length === 3) {
      server = parseServer(parts[0]!);
      rest = parts.slice(1).join('/');
    } else if (parts.length !== 2) {
      throw bad('wrong number of / separators');
    }
  }
  let release: string | undefined;
  let channel: string | undefined;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  const colon = rest.indexOf(':');
  if (at >= 0) {
    const what = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (what.startsWith('sha256:')) {
      digest = what.slice('sha256:'.length);
      if (!/^[a-f0-9]{64}$/.test(digest)) throw bad('a digest is sha256: and 64 lowercase hex digits');
    } else {
      if (!isRelease(what) && what !== 'default') throw bad(`${JSON.stringify(what)} is not a SemVer release`);
      release = what;
    }
  } else if (colon >= 0) {
    channel = parseChannelName(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  const [namespace, name, ...more] = rest.split('/');
  if (namespace === undefined || name === undefined || more.length > 0) throw bad('the package is namespace/name');
  let pkg: PackageName;
  try {
    pkg = parsePackageName(namespace, name);
  } catch (err) {
    throw bad((err as Error).message);
  }
  return { server, pkg, ...(release ? { release } : {}), ...(channel ? { channel } : {}), ...(digest ? { digest } : {}) };
}
