import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { describe, it } from 'vitest';

/**
 * A real `registry:2` (distribution) server for tests. Where a Docker engine answers,
 * testcontainers runs the `registry:2` image; elsewhere (here, CI) Debian's `docker-registry`
 * binary, the same distribution code, listens on a free loopback port.
 */
export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of references. */
  host: string;
  /** Where the registry stores blobs (for corruption tests); undefined in a container. */
  storageDir?: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Basic auth (htpasswd) with these users. */
  htpasswd?: Record<string, string>;
  /** Serve HTTPS with this certificate and key (PEM files); require client certificates from `clientCaFile`. */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
  /** Listen here instead of 127.0.0.1 (a non-loopback address, where Docker verifies TLS). */
  bindAddress?: string;
  /** Token auth: realm URL, service, issuer and the PEM bundle whose key signs tokens. */
  token?: { realm: string; service: string; issuer: string; rootCertBundleFile: string };
  /** Allow deleting manifests (storage.delete.enabled); default true. Distribution's own default is false. */
  deletes?: boolean;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  if (await dockerEngineReachable()) return startContainer(options);
  return startBinary(options);
}

const BINARY = process.env.CNAB_OCI_TEST_REGISTRY_BIN ?? '/usr/bin/docker-registry';

async function startBinary(options: RegistryOptions): Promise<TestRegistry> {
  if (!existsSync(BINARY)) {
    throw new Error(`${BINARY} not found: install Debian's docker-registry (apt-get install -y docker-registry), or run .ci/run`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'cnab-oci-registry-'));
  const port = await freePort();
  const config = await writeConfig(dir, port, options);
  const child = spawn(BINARY, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const host = `${options.bindAddress ?? '127.0.0.1'}:${port}`;
  try {
    await waitUntilServing(host, child, options.tls ? 'https' : 'http', () => stderr, options.tls);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    host,
    storageDir: join(dir, 'storage'),
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function writeConfig(dir: string, port: number, options: RegistryOptions): Promise<string> {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  delete:',
    `    enabled: ${options.deletes ?? true}`,
    'http:',
    `  addr: ${options.bindAddress ?? '127.0.0.1'}:${port}`,
    '  secret: cnab-oci-test-secret',
  ];
  if (options.tls) lines.push('  tls:', `    certificate: ${options.tls.certFile}`, `    key: ${options.tls.keyFile}`);
  if (options.tls?.clientCaFile) lines.push('    clientcas:', `      - ${options.tls.clientCaFile}`);
  if (options.htpasswd) {
    const file = join(dir, 'htpasswd');
    // Cost 4 is bcrypt's minimum: the test is about the protocol, not password hashing.
    const entries = Object.entries(options.htpasswd).map(([user, pw]) => `${user}:${bcrypt.hashSync(pw, 4)}`);
    await writeFile(file, `${entries.join('\n')}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: cnab-oci-test', `    path: ${file}`);
  } else if (options.token) {
    const t = options.token;
    lines.push('auth:', '  token:', `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.rootCertBundleFile}`);
  }
  const file = join(dir, 'config.yml');
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

async function waitUntilServing(host: string, child: ChildProcess, scheme: string, stderr: () => string, tls?: RegistryOptions['tls']): Promise<void> {
  // A registry that demands client certificates is ready as soon as it accepts connections.
  if (tls?.clientCaFile) return waitForPort(host, child, stderr);
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  const deadline = Date.now() + 20_000;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr()}`);
      try {
        const res = await request(`${scheme}://${host}/v2/`, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`docker-registry did not start on ${host} within 20 s: ${stderr()}`);
  } finally {
    await agent.close();
  }
}

async function waitForPort(host: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const [address, port] = [host.slice(0, host.lastIndexOf(':')), Number(host.slice(host.lastIndexOf(':') + 1))];
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr()}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, address);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not start on ${host} within 20 s: ${stderr()}`);
}

/**
 * `describe`, for a suite that needs a non-loopback address (TLS is verified there; proxies are
 * used there). Without one, the suite is one test that fails under CI=true and warns elsewhere:
 * it is never skipped without a word.
 */
export function describeWithExternalAddress(name: string, body: () => void): void {
  if (externalAddress() !== undefined) {
    describe(name, body);
    return;
  }
  describe(name, () => {
    it('needs a non-loopback IPv4 address on this machine', () => {
      if (process.env.CI) throw new Error(`${name}: this machine has no non-loopback IPv4 address, so these tests cannot run`);
      console.warn(`${name}: not run: no non-loopback IPv4 address on this machine`);
    });
  });
}

/** The first non-loopback IPv4 address, where TLS is verified (Docker trusts loopback blindly). */
export function externalAddress(): string | undefined {
  return Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
}

function stopChild(child: ChildProcess): Promise<void> {
  // A child killed by a signal has a null exitCode but a signalCode: it is gone all the same.
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A Docker engine is reachable when DOCKER_HOST is set or the default socket accepts a connection. */
async function dockerEngineReachable(): Promise<boolean> {
  if (process.env.CNAB_OCI_TEST_NO_DOCKER) return false;
  const socket = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice(7) : '/var/run/docker.sock';
  if (!process.env.DOCKER_HOST && !existsSync(socket)) return false;
  if (process.env.DOCKER_HOST && !process.env.DOCKER_HOST.startsWith('unix://')) return true;
  return new Promise((resolve) => {
    const s = connect(socket);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function startContainer(options: RegistryOptions): Promise<TestRegistry> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const dir = await mkdtemp(join(tmpdir(), 'cnab-oci-registry-'));
  let container = new GenericContainer('registry:2')
    .withExposedPorts(5000)
    .withEnvironment({ REGISTRY_STORAGE_DELETE_ENABLED: String(options.deletes ?? true) })
    .withWaitStrategy(Wait.forHttp('/v2/', 5000).forStatusCodeMatching((s) => s === 200 || s === 401));
  if (options.htpasswd) {
    const entries = Object.entries(options.htpasswd).map(([user, pw]) => `${user}:${bcrypt.hashSync(pw, 4)}`);
    container = container
      .withCopyContentToContainer([{ content: `${entries.join('\n')}\n`, target: '/auth/htpasswd' }])
      .withEnvironment({ REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_REALM: 'cnab-oci-test', REGISTRY_AUTH_HTPASSWD_PATH: '/auth/htpasswd' });
  }
  if (options.tls || options.token) throw new Error('TLS and token registries run on the docker-registry binary only (set CNAB_OCI_TEST_NO_DOCKER=1)');
  const started = await container.start();
  return {
    host: `${started.getHost()}:${started.getMappedPort(5000)}`,
    async stop() {
      await started.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
