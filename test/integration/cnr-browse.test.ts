import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeChart, makePackage, pushBody } from '../helpers/cnr-packages.js';
import { call, startCnrServer, type CnrServer } from '../helpers/cnr-server.js';

/**
 * The browser pages of a real `cnr serve`, as headless Chromium renders them: Chromium is
 * driven through its DevTools protocol over a pipe (`--remote-debugging-pipe`), no browser
 * library. Screenshots of every page land in SHOTS (printed); look at them.
 */

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(tmpdir(), 'cnr-browse-screenshots');
const XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';

// --- a minimal DevTools protocol client --------------------------------------------------------

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

class Cdp {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }>();
  private readonly listeners = new Set<(m: Message) => void>();
  private buffer = Buffer.alloc(0);

  constructor(private readonly out: Writable, input: Readable) {
    input.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      for (let at = this.buffer.indexOf(0); at >= 0; at = this.buffer.indexOf(0)) {
        const message = JSON.parse(this.buffer.subarray(0, at).toString('utf8')) as Message;
        this.buffer = this.buffer.subarray(at + 1);
        this.dispatch(message);
      }
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.out.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  /** The next event `method` of a session (register before causing it). */
  event(method: string, sessionId: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`no ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (m: Message) => {
        if (m.method !== method || m.sessionId !== sessionId) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(m.params ?? {});
      };
      this.listeners.add(listener);
    });
  }

  on(listener: (m: Message) => void): void {
    this.listeners.add(listener);
  }

  failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private dispatch(m: Message): void {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error) p?.reject(new Error(`${p.method}: ${m.error.message}`));
      else p?.resolve(m.result ?? {});
      return;
    }
    for (const l of [...this.listeners]) l(m);
  }
}

interface Browser {
  child: ChildProcess;
  cdp: Cdp;
  stderr(): string;
  close(): Promise<void>;
}

async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}: the browser tests need it; install it with \`apt-get install -y chromium\``);
  }
  const profile = await mkdtemp(join(tmpdir(), 'cnr-browse-profile-'));
  const child = spawn(
    CHROMIUM,
    [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio',
      `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const cdp = new Cdp(child.stdio[3] as Writable, child.stdio[4] as Readable);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => cdp.failAll(new Error(`chromium exited (${child.exitCode ?? child.signalCode}): ${stderr.slice(-2000)}`)));
  child.once('error', (err) => cdp.failAll(err));
  // The pipe answers once the browser is up.
  await Promise.race([
    cdp.send('Browser.getVersion'),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`chromium did not answer within 30 s: ${stderr.slice(-2000)}`)), 30_000)),
  ]);
  return {
    child,
    cdp,
    stderr: () => stderr,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await cdp.send('Browser.close').catch(() => undefined);
        await exited;
        clearTimeout(timer);
      }
      await rm(profile, { recursive: true, force: true });
    },
  };
}

class Page {
  /** Status of the last document loaded. */
  status = 0;

  private constructor(private readonly cdp: Cdp, private readonly session: string) {
    cdp.on((m) => {
      if (m.sessionId === session && m.method === 'Network.responseReceived' && m.params?.type === 'Document') {
        this.status = (m.params.response as { status: number }).status;
      }
    });
  }

  static async open(browser: Browser): Promise<Page> {
    const { targetId } = await browser.cdp.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await browser.cdp.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(browser.cdp, sessionId as string);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Network.enable');
    await page.send('Emulation.setDeviceMetricsOverride', { width: 1280, height: 800, deviceScaleFactor: 1, mobile: false });
    return page;
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.cdp.send(method, params, this.session);
  }

  /** Run `action` and wait for the page it causes to load. */
  async loads(action: () => Promise<unknown>): Promise<void> {
    const loaded = this.cdp.event('Page.loadEventFired', this.session);
    await action();
    await loaded;
  }

  goto(url: string): Promise<void> {
    return this.loads(() => this.send('Page.navigate', { url }));
  }

  async eval<T>(expression: string): Promise<T> {
    const answer = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (answer.exceptionDetails) throw new Error(`evaluate ${expression}: ${JSON.stringify(answer.exceptionDetails)}`);
    return (answer.result as { value: T }).value;
  }

  url(): Promise<string> {
    return this.eval<string>('location.href');
  }

  text(selector: string): Promise<string[]> {
    return this.eval<string[]>(`[...document.querySelectorAll(${JSON.stringify(selector)})].map((e) => e.textContent.trim())`);
  }

  /** Click the middle of an element with the mouse, as a user does. */
  async click(selector: string): Promise<void> {
    const box = await this.eval<{ x: number; y: number } | null>(`(() => {
      const el = document.querySelector(${JSON.stringify(selector)});
      if (!el) return null;
      el.scrollIntoView({ block: 'center' });
      const r = el.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    })()`);
    if (!box) throw new Error(`nothing matches ${selector}`);
    await this.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: box.x, y: box.y });
    await this.send('Input.dispatchMouseEvent', { type: 'mousePressed', x: box.x, y: box.y, button: 'left', clickCount: 1 });
    await this.send('Input.dispatchMouseEvent', { type: 'mouseReleased', x: box.x, y: box.y, button: 'left', clickCount: 1 });
  }

  /** Focus a field by clicking it and type into it key by key. */
  async type(selector: string, text: string): Promise<void> {
    await this.click(selector);
    for (const ch of text) {
      await this.send('Input.dispatchKeyEvent', { type: 'keyDown', key: ch, text: ch });
      await this.send('Input.dispatchKeyEvent', { type: 'keyUp', key: ch });
    }
  }

  async pressEnter(): Promise<void> {
    await this.send('Input.dispatchKeyEvent', { type: 'keyDown', key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13, text: '\r' });
    await this.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13 });
  }

  /** A PNG of the whole page. */
  async screenshot(name: string): Promise<string> {
    const metrics = await this.send('Page.getLayoutMetrics');
    const size = metrics.cssContentSize as { width: number; height: number };
    const { data } = await this.send('Page.captureScreenshot', {
      format: 'png',
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: Math.max(1280, Math.ceil(size.width)), height: Math.ceil(size.height), scale: 1 },
    });
    const file = join(SHOTS, `${name}.png`);
    await writeFile(file, Buffer.from(data as string, 'base64'));
    console.log(`screenshot: ${file}`);
    return file;
  }
}

// --- the test ---------------------------------------------------------------------------------

describe('cnr serve: the browser pages in headless Chromium', () => {
  let dir: string;
  let server: CnrServer;
  let browser: Browser | undefined;
  let page: Page;
  /** Why Chromium did not start: every test fails with it (a missing browser is a failure, not a skip). */
  let launchFailure: Error | undefined;
  let chart: Buffer;

  const push = async (path: string, body: string) => {
    const answer = await call(`${server.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(answer.status, answer.body.toString()).toBe(200);
  };

  beforeAll(async () => {
    await rm(SHOTS, { recursive: true, force: true });
    await mkdir(SHOTS, { recursive: true });
    console.log(`screenshots of the browser pages: ${SHOTS}`);
    try {
      browser = await launchChromium();
      page = await Page.open(browser);
    } catch (err) {
      launchFailure = err as Error;
      return;
    }
    dir = await mkdtemp(join(tmpdir(), 'cnr-browse-'));
    server = await startCnrServer({ storage: `oci:${join(dir, 'data')}` });
  });

  beforeEach(() => {
    if (launchFailure) throw launchFailure;
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an empty store says so and shows how to push the first package', async () => {
    await page.goto(`${server.url}/`);
    expect(page.status).toBe(200);
    const empty = (await page.text('p.empty')).join(' ');
    expect(empty).toContain('No packages yet');
    expect((await page.text('pre.cmd'))[0]).toContain(`curl -X POST http://127.0.0.1:${server.port}/cnr/api/v1/packages/NAMESPACE/NAME`);
    await page.screenshot('1-empty');
  });

  it('lists pushed packages, searches them, and shows a package with its releases, channels and commands', async () => {
    chart = await makeChart('web', '1.2.0');
    await push('/cnr/api/v1/packages/acme/web', pushBody(await makeChart('web', '1.0.0'), '1.0.0', 'helm'));
    await push('/cnr/api/v1/packages/acme/web', pushBody(chart, '1.2.0', 'helm', { metadata: { description: 'The acme web front', maintainer: 'web-team@acme.example' } }));
    await push('/cnr/api/v1/packages/acme/web', pushBody(await makePackage('web', 'kpm-1.2.0'), '1.2.0', 'kpm'));
    await push('/api/v1/packages/beta/db', pushBody(await makePackage('db', 'db'), '0.3.0', 'kpm', { metadata: { description: XSS } }));
    await push('/cnr/api/v1/packages/acme/web/channels/stable/1.0.0', '');
    await push('/cnr/api/v1/packages/acme/web/channels/stable/1.2.0', '');

    // The index: both packages, their default release and media types, a namespace link each.
    await page.goto(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text('table.list tbody a.pkg')).toEqual(['acme/web', 'beta/db']);
    const rows = await page.eval<string[][]>(`[...document.querySelectorAll('table.list tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent.trim()))`);
    expect(rows[0]!.slice(0, 4)).toEqual(['acme/web', 'acme', '1.2.0 · 2 releases', 'helm kpm']);
    expect(rows[1]!.slice(0, 4)).toEqual(['beta/db', 'beta', '0.3.0', 'kpm']);
    expect(rows[0]![4]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
    expect(await page.eval<string[]>(`[...document.querySelectorAll('a.ns')].map((a) => a.getAttribute('href'))`)).toEqual(['/?namespace=acme', '/?namespace=beta']);
    await page.screenshot('2-index');

    // Type into the search box and submit with Enter: a GET ?q=.
    await page.loads(async () => {
      await page.type('input[name=q]', 'we');
      await page.pressEnter();
    });
    expect(new URL(await page.url()).search).toBe('?q=we');
    expect(await page.text('table.list tbody a.pkg')).toEqual(['acme/web']);
    expect((await page.text('p.filter')).join(' ')).toContain('1 of 2 packages matching we');
    expect(await page.eval<string>(`document.querySelector('input[name=q]').value`)).toBe('we');
    await page.screenshot('3-search');

    // The namespace filter link.
    await page.goto(`${server.url}/`);
    await page.loads(() => page.click('a.ns[href="/?namespace=beta"]'));
    expect(await page.text('table.list tbody a.pkg')).toEqual(['beta/db']);

    // Open a package from the list.
    await page.goto(`${server.url}/`);
    await page.loads(() => page.click('a.pkg[href="/acme/web"]'));
    expect(new URL(await page.url()).pathname).toBe('/acme/web');
    expect(page.status).toBe(200);
    expect(await page.text('h1')).toEqual(['acme/web']);
    expect(await page.text('section.release h3')).toEqual(['1.2.0 default stable', '1.0.0']);
    const facts = await page.text('#release-1\\.2\\.0 .facts');
    expect(facts).toHaveLength(2);
    expect(facts[0]).toMatch(/^helm·\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC·digest [0-9a-f]{12}·\d+ B·Helm OCI chart$/);
    expect(facts[1]).toMatch(/^kpm·.*·digest [0-9a-f]{12}·\d+ B$/);
    expect((await page.text('#release-1\\.2\\.0 details.metadata pre'))[0]).toContain('"maintainer": "web-team@acme.example"');
    const base = `http://127.0.0.1:${server.port}/cnr/api/v1/packages/acme/web`;
    const commands = await page.text('#release-1\\.2\\.0 pre.cmd');
    expect(commands).toEqual([
      expect.stringMatching(new RegExp(`^curl -o acme_web_[0-9a-f]{8}\\.tar\\.gz ${base.replaceAll('.', '\\.')}/1\\.2\\.0/helm/pull$`)),
      expect.stringMatching(/\/1\.2\.0\/kpm\/pull$/),
    ]);
    // A layout store has no registry for Helm to pull from: no helm command.
    expect((await page.text('pre.cmd')).some((c) => c.startsWith('helm pull'))).toBe(false);
    // The curl command fetches what was pushed.
    const pulled = await call(commands[0]!.split(' ').at(-1)!);
    expect(pulled.status).toBe(200);
    expect(pulled.body.equals(chart)).toBe(true);
    // Channels: name, current, members.
    const channels = await page.eval<string[][]>(`[...document.querySelectorAll('table.channels tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent.trim()))`);
    expect(channels).toEqual([['stable', '1.2.0', '1.2.0, 1.0.0']]);
    // appr's discovery tag, in <head>.
    expect(await page.eval<string[]>(`[...document.head.querySelectorAll('meta[name="appr-package"]')].map((m) => m.content)`)).toEqual([
      `127.0.0.1:${server.port}/acme/web ${base}/{version}/{media_type}/pull`,
    ]);
    await page.screenshot('4-package');
  });

  it('shows hostile metadata as text, and nothing in it runs', async () => {
    await page.goto(`${server.url}/beta/db?appr-discovery=1`);
    expect(page.status).toBe(200);
    expect((await page.text('details.metadata pre'))[0]).toContain(XSS.replaceAll('"', '\\"'));
    expect(await page.eval<number>('document.querySelectorAll("script, main img").length')).toBe(0);
    expect(await page.eval<unknown>('window.__pwned ?? null')).toBeNull();
    await page.screenshot('5-metadata');
  });

  it('answers an unknown package with a 404 page, and every page with a CSP that forbids scripts', async () => {
    await page.goto(`${server.url}/acme/nothing`);
    expect(page.status).toBe(404);
    expect(await page.text('h1')).toEqual(['Package not found']);
    await page.screenshot('6-not-found');

    const browser = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
    for (const path of ['/', '/acme/web', '/acme/nothing', '/Not_Valid/x']) {
      const answer = await call(`${server.url}${path}`, { headers: browser });
      expect(answer.headers['content-type'], path).toBe('text/html; charset=utf-8');
      expect(answer.headers['content-security-policy'], path).toBe("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
      expect(answer.body.toString().startsWith('<!doctype html>'), path).toBe(true);
    }
    expect((await call(`${server.url}/Not_Valid/x`, { headers: browser })).status).toBe(404);
    // A client that does not ask for HTML (an API client on a wrong path) gets the API's envelope.
    const api = await call(`${server.url}/acme/nothing`);
    expect(api.status).toBe(404);
    expect((api.json as { code?: string }).code).toBe('resource-not-found');
    // HOST in the commands is the Host header; one that is not a plain host[:port] is replaced by the address used.
    const named = (await call(`${server.url}/acme/web`, { headers: { host: 'cnr.example:8080' } })).body.toString();
    expect(named).toContain('curl -o acme_web_');
    expect(named).toContain(' http://cnr.example:8080/cnr/api/v1/packages/acme/web/1.2.0/helm/pull');
    const hostile = (await call(`${server.url}/acme/web`, { headers: { host: 'x"><script>alert(1)</script>' } })).body.toString();
    expect(hostile).not.toMatch(/<script/i);
    expect(hostile).toContain(`http://127.0.0.1:${server.port}/cnr/api/v1/packages/acme/web/1.2.0/helm/pull`);
    // The API's own answers are untouched.
    expect((await call(`${server.url}/cnr/api/v1/packages`)).json).toHaveLength(2);
  });
});
