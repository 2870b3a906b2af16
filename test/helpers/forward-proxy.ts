import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

/** What went through the proxy: CONNECT tunnels (`host:port`) and absolute-URI requests. */
export interface ProxyLog {
  connects: string[];
  /** `METHOD http://host:port/path` for each plain-HTTP request forwarded. */
  requests: string[];
}

export interface ForwardProxy extends ProxyLog {
  /** `http://127.0.0.1:PORT`, for HTTP_PROXY / HTTPS_PROXY. */
  url: string;
  /** Forget what was logged so far. */
  reset(): void;
  stop(): Promise<void>;
}

/**
 * A small HTTP forward proxy for tests (node:http): CONNECT tunnels for HTTPS and absolute-URI
 * requests (`GET http://host/path`) for plain HTTP, each one logged so tests can tell what went
 * through it and what did not.
 */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const log: ProxyLog = { connects: [], requests: [] };
  const sockets = new Set<Socket>();

  const server: Server = createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
      if (target.protocol !== 'http:') throw new Error('not http');
    } catch {
      res.writeHead(400).end('forward proxy: absolute http:// URI expected');
      return;
    }
    log.requests.push(`${req.method} ${target.origin}${target.pathname}`);
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    delete headers['proxy-authorization'];
    const upstream = httpRequest(
      { host: target.hostname, port: target.port || 80, method: req.method, path: `${target.pathname}${target.search}`, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502).end(`forward proxy: ${err.message}`);
      else res.destroy();
    });
    req.pipe(upstream);
  });

  server.on('connect', (req, client: Socket, head: Buffer) => {
    const authority = req.url ?? '';
    log.connects.push(authority);
    const colon = authority.lastIndexOf(':');
    const upstream = connect(Number(authority.slice(colon + 1)), authority.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const close = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on('error', () => {
      if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      close();
    });
    client.on('error', close);
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    get connects() {
      return log.connects;
    },
    get requests() {
      return log.requests;
    },
    reset() {
      log.connects.length = 0;
      log.requests.length = 0;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
