import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher, EnvHttpProxyAgent as UndiciEnvHttpProxyAgent } from 'undici';
import { isLoopbackHost } from '../oci/reference.js';

/**
 * The connections under a Transport: one undici dispatcher (a connection pool) per origin, set
 * up with Docker's TLS settings for that host and, where the environment names one, a proxy.
 */

// undici's index loads all it has (fetch, WebSocket, caches, mocks): ~0.1 s of every start-up
// (bench/). The agent and the request API used here, loaded on their own, cost a third of that.
const require = createRequire(import.meta.url);
const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
export const undiciRequest = (require('undici/lib/api/index.js') as { request: (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData> }).request;
// Proxies need all of undici (its CONNECT tunnels use API methods the index mixes in): loaded only then.
const envHttpProxyAgent = () => (require('undici') as { EnvHttpProxyAgent: typeof UndiciEnvHttpProxyAgent }).EnvHttpProxyAgent;

/** What the connections are made with: TLS material, or a dispatcher of the caller's own. */
export interface ConnectionOptions {
  /** Docker's per-registry TLS directory: `<certsDir>/<host>/{*.crt,*.cert,*.key}`. */
  certsDir?: string;
  /** More such directories (e.g. `~/.docker/certs.d` besides `/etc/docker/certs.d`): CAs from all of them are trusted, the first client certificate found is used. */
  certsDirs?: string[];
  /** Extra CA certificates (PEM) trusted for every registry. */
  ca?: string[];
  /** Replaces the dispatcher (for tests: a fault-injecting proxy, a mock clock). */
  dispatcher?: Dispatcher;
}

type TlsOptions = { ca?: string[]; cert?: string; key?: string; rejectUnauthorized?: boolean };

export class Dispatchers {
  private readonly dispatchers = new Map<string, Dispatcher>();

  /** `isInsecure`: hosts whose certificates are not verified (the Transport's rule). */
  constructor(
    private readonly options: ConnectionOptions,
    private readonly isInsecure: (host: string) => boolean,
  ) {}

  /** The dispatcher for a URL's origin, made on first use (or the one the options replace them all with). */
  for(url: URL): Dispatcher {
    if (this.options.dispatcher) return this.options.dispatcher;
    const key = `${url.protocol}//${url.host}`;
    let d = this.dispatchers.get(key);
    if (!d) {
      const tls = url.protocol === 'https:' ? this.tlsOptions(url.host) : {};
      // EnvHttpProxyAgent honours HTTP_PROXY, HTTPS_PROXY and NO_PROXY; as in Go (so Docker),
      // loopback is never proxied. Through a proxy, `requestTls` is what applies to the registry.
      d = hasProxyEnv() && !isLoopbackHost(url.host)
        // Plain-HTTP registries go as absolute-URI requests, as Go does (proxies often allow
        // CONNECT to port 443 only); HTTPS ones through a CONNECT tunnel.
        ? new (envHttpProxyAgent())({ connect: tls, requestTls: tls, proxyTunnel: false })
        : new Agent({ connect: tls });
      this.dispatchers.set(key, d);
    }
    return d;
  }

  /** TLS settings for a host: extra CAs, Docker's certs.d directory, verification for insecure hosts. */
  private tlsOptions(host: string): TlsOptions {
    const ca = [...(this.options.ca ?? [])];
    let cert: string | undefined;
    let key: string | undefined;
    const roots = [...(this.options.certsDir ? [this.options.certsDir] : []), ...(this.options.certsDirs ?? [])];
    for (const root of new Set(roots)) {
      const dir = join(root, host.replace(/:/g, process.platform === 'win32' ? '_' : ':'));
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).sort()) {
        if (f.endsWith('.crt')) ca.push(readFileSync(join(dir, f), 'utf8'));
        else if (f.endsWith('.cert') && !cert) {
          cert = readFileSync(join(dir, f), 'utf8');
          key = readFileSync(join(dir, f.replace(/\.cert$/, '.key')), 'utf8');
        }
      }
    }
    const opts: TlsOptions = {};
    // Node replaces its bundled roots when `ca` is set: keep them so public registries still verify.
    if (ca.length > 0) opts.ca = [...rootCertificates, ...ca];
    if (cert && key) Object.assign(opts, { cert, key });
    if (this.isInsecure(host)) opts.rejectUnauthorized = false;
    return opts;
  }

  async close(): Promise<void> {
    await Promise.all([...this.dispatchers.values()].map((d) => d.close()));
    this.dispatchers.clear();
  }
}

function hasProxyEnv(): boolean {
  const e = process.env;
  return Boolean(e.HTTPS_PROXY || e.https_proxy || e.HTTP_PROXY || e.http_proxy);
}
