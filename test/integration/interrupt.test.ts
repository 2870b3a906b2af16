import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { runCli, CLI } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/** Run the CLI, send it `signal` after `afterMs`, and say how it ended and how long that took. */
function interrupt(args: string[], env: Record<string, string>, afterMs: number, signal: NodeJS.Signals = 'SIGINT'): Promise<{ code: number | null; stderr: string; tookMs: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let sentAt = 0;
    setTimeout(() => {
      sentAt = Date.now();
      child.kill(signal);
    }, afterMs);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, tookMs: Date.now() - sentAt }));
  });
}

describe('Ctrl-C', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let slow: FaultProxy;
  let work: string;
  let bundleRef: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    // Every answer of the destination comes 6 s late: a copy through it is still running when interrupted.
    slow = await startFaultProxy(b.host, { rules: [{ match: () => true, kind: 'slow', phase: 'response' }], slowMs: 6000 });
    work = await mkdtemp(join(tmpdir(), 'cnab-oci-interrupt-'));
    const client = new RegistryClient();
    const image = await pushImage(client.repository(parseReference(`${a.host}/src/app`)), { layers: [3_000_000, 2_000_000] });
    await client.close();
    await writeFile(join(work, 'bundle.json'), JSON.stringify({ schemaVersion: 'v1.2.0', name: 'slow', version: '1.0.0', invocationImages: [{ imageType: 'oci', image: `${a.host}/src/app@${image.digest}` }] }));
    bundleRef = `${a.host}/acme/slow:1.0.0`;
    const push = await runCli(['push', join(work, 'bundle.json'), '--target', bundleRef]);
    expect(push.code, push.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await slow?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('stops a copy at once, exits 130, tags nothing, and leaves no temporary file', async () => {
    const tmp = await mkdtemp(join(work, 'tmp-'));
    const res = await interrupt(['copy', bundleRef, `${slow.host}/relo/slow:1.0.0`], { TMPDIR: tmp }, 1500);
    expect(res.code, res.stderr).toBe(130);
    expect(res.stderr).toMatch(/interrupted \(SIGINT\)/);
    expect(res.stderr.trim().split("\n").filter((l) => l.startsWith("cnab-oci: error:")), res.stderr).toHaveLength(1);
    // The 6 s answers in flight were not waited for (they would come 4.5 s or more after the signal).
    expect(res.tookMs).toBeLessThan(4000);
    const client = new RegistryClient();
    const tags = await client.repository(parseReference(`${b.host}/relo/slow`)).tags().catch(() => []);
    await client.close();
    expect(tags).not.toContain('1.0.0');
    expect(await readdir(tmp)).toEqual([]);
  });

  it('stops a copy into an archive: no archive file, no extracted layout left, 143 for SIGTERM', async () => {
    const tmp = await mkdtemp(join(work, 'tmp-'));
    const file = join(work, 'never.tar');
    // The source is slow this time: the archive's temporary layout is being filled when the signal comes.
    const slowSource = await startFaultProxy(a.host, { rules: [{ match: (r) => r.url.includes('/blobs/'), kind: 'slow', phase: 'response' }], slowMs: 3000 });
    try {
      const res = await interrupt(['copy', `${slowSource.host}/acme/slow:1.0.0`, `oci-archive:${file}`], { TMPDIR: tmp }, 1500, 'SIGTERM');
      expect(res.code, res.stderr).toBe(143);
      expect(existsSync(file)).toBe(false);
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      await slowSource.stop();
    }
  });
  it('stops at once while a connection is still being made (a server that never answers), and removes the layout it created', async () => {
    // Accepts connections and says nothing: the TLS handshake of the first request never ends.
    const sockets = new Set<import('node:net').Socket>();
    const hung = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(hung.address() as AddressInfo).port}`;
    const dir = join(work, 'never-layout');
    try {
      const res = await interrupt(['copy', `${host}/acme/app:1`, `oci:${dir}`], {}, 1500);
      expect(res.code, res.stderr).toBe(130);
      // Before: the abort waited out the 5 s grace (undici honours it only once connected).
      expect(res.tookMs).toBeLessThan(2500);
      expect(existsSync(dir)).toBe(false);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => hung.close(resolve));
    }
  });
});
