/**
 * Headless Chromium (Debian's `chromium`, no browser download) driven over
 * the Chrome DevTools Protocol on a pipe (`--remote-debugging-pipe`: file
 * descriptors 3 and 4, NUL-separated JSON), so a test needs no port and no
 * client library. Every page collects its console errors, uncaught
 * exceptions and failed loads; tests assert there are none. A fresh
 * user-data-dir per launch, removed on close.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { hasCommand } from '../../src/netns/capability.js';
import { ROOT, within } from '../support.js';

const CHROMIUM = '/usr/bin/chromium';

/** Where tests put screenshots (gitignored). */
export const ARTIFACTS = join(ROOT, 'test-artifacts');

/** True when Chromium can run; otherwise the test is skipped (a failure under CI=true). */
export function requireChromium(t: TestContext): boolean {
  if (hasCommand(CHROMIUM)) return true;
  const reason = 'chromium is missing: apt-get install chromium (scripts/system-deps.sh)';
  if (process.env.CI === 'true') throw new Error(`CI=true: this test must run, but ${reason}`);
  t.skip(reason);
  return false;
}

type Pending = { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void; method: string };
type Listener = (params: Record<string, unknown>, sessionId: string | undefined) => void;

export class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Listener[]>();
  private buf = '';
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    const out = child.stdio[4] as Readable;
    out.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      for (let at = this.buf.indexOf('\0'); at >= 0; at = this.buf.indexOf('\0')) {
        const text = this.buf.slice(0, at);
        this.buf = this.buf.slice(at + 1);
        this.receive(JSON.parse(text) as Record<string, unknown>);
      }
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited during ${p.method}`));
      this.pending.clear();
    });
  }

  static async launch(): Promise<Browser> {
    const dir = mkdtempSync(join(tmpdir(), 'keepwire-chromium-'));
    const child = spawn(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-extensions',
        '--disable-dev-shm-usage',
        '--remote-debugging-pipe',
        `--user-data-dir=${dir}`,
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    child.stderr!.resume();
    const browser = new Browser(child, dir);
    // The first answer says the browser is up.
    await within(browser.send('Browser.getVersion'), 30_000, 'chromium to start');
    return browser;
  }

  private receive(msg: Record<string, unknown>): void {
    if (typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (p === undefined) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${JSON.stringify(msg.error)}`));
      else p.resolve((msg.result ?? {}) as Record<string, unknown>);
      return;
    }
    const method = msg.method as string;
    for (const l of this.listeners.get(method) ?? [])
      l((msg.params ?? {}) as Record<string, unknown>, msg.sessionId as string | undefined);
  }

  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const msg: Record<string, unknown> = { id, method, params };
    if (sessionId !== undefined) msg.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      (this.child.stdio[3] as Writable).write(`${JSON.stringify(msg)}\0`);
    });
  }

  on(method: string, listener: Listener): void {
    const list = this.listeners.get(method) ?? [];
    list.push(listener);
    this.listeners.set(method, list);
  }

  /** A new tab, attached, with console and log collection on. */
  async newPage(width = 1400, height = 900): Promise<Page> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as {
      targetId: string;
    };
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as {
      sessionId: string;
    };
    const page = new Page(this, sessionId);
    this.on('Runtime.consoleAPICalled', (p, s) => {
      if (s !== sessionId) return;
      const args = (p.args as { value?: unknown; description?: string }[]) ?? [];
      const text = args.map((a) => String(a.value ?? a.description ?? '')).join(' ');
      page.console.push(`${p.type}: ${text}`);
      if (p.type === 'error' || p.type === 'assert') page.errors.push(`console.${p.type}: ${text}`);
    });
    this.on('Runtime.exceptionThrown', (p, s) => {
      if (s !== sessionId) return;
      const d = p.exceptionDetails as { text?: string; exception?: { description?: string } };
      page.errors.push(`uncaught: ${d.exception?.description ?? d.text}`);
    });
    this.on('Log.entryAdded', (p, s) => {
      if (s !== sessionId) return;
      const e = p.entry as { level: string; text: string; url?: string };
      if (e.level === 'error') page.errors.push(`log: ${e.text}${e.url ? ` (${e.url})` : ''}`);
    });
    await this.send('Runtime.enable', {}, sessionId);
    await this.send('Log.enable', {}, sessionId);
    await this.send('Page.enable', {}, sessionId);
    await this.send(
      'Emulation.setDeviceMetricsOverride',
      { width, height, deviceScaleFactor: 1, mobile: false },
      sessionId,
    );
    return page;
  }

  async close(): Promise<void> {
    try {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        await within(this.send('Browser.close'), 5000, 'Browser.close').catch(() =>
          this.child.kill('SIGKILL'),
        );
        await within(this.exited, 10_000, 'chromium exit').catch(() => this.child.kill('SIGKILL'));
      }
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

export class Page {
  /** Console errors, uncaught exceptions and failed loads (the test fails on any). */
  readonly errors: string[] = [];
  /** Every console message, for the failure message of a test. */
  readonly console: string[] = [];

  constructor(
    private readonly browser: Browser,
    readonly sessionId: string,
  ) {}

  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) =>
      this.browser.on('Page.loadEventFired', (_p, s) => {
        if (s === this.sessionId) resolve();
      }),
    );
    const r = (await this.browser.send('Page.navigate', { url }, this.sessionId)) as { errorText?: string };
    if (r.errorText) throw new Error(`navigate ${url}: ${r.errorText}`);
    await within(loaded, 30_000, `load of ${url}`);
  }

  /** The value of a JavaScript expression in the page (promises awaited). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.browser.send(
      'Runtime.evaluate',
      { expression, returnByValue: true, awaitPromise: true },
      this.sessionId,
    )) as {
      result: { value?: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    };
    if (r.exceptionDetails)
      throw new Error(`evaluate: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Polls `expression` until it is truthy (bounded); returns its value. */
  async waitFor<T>(expression: string, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.evaluate<T>(expression);
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Saves a PNG of the page (the whole document height) and returns its path. */
  async screenshot(path: string): Promise<string> {
    const r = (await this.browser.send(
      'Page.captureScreenshot',
      { format: 'png', captureBeyondViewport: true },
      this.sessionId,
    )) as { data: string };
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, Buffer.from(r.data, 'base64'));
    return path;
  }
}
