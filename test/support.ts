/**
 * Helpers every test directory shares: bounded waits, real TCP peers on
 * 127.0.0.1, temporary directories that are removed after the test (passed
 * or failed), and the real `keepwire serve` process driven by a config text.
 * Protocol-specific model builders stay next to their tests
 * (test/proxy/fixtures.ts for stream, test/proxy/http/fixtures.ts for HTTP).
 * Every wait is bounded: a hung proxy fails a test instead of hanging the run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/test/. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI entry point (`keepwire`). */
export const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

// ---- time -------------------------------------------------------------------

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits (bounded) until `cond` holds, checking every 10 ms: a condition with no event to wait for. */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]);
}

/**
 * Entries arriving over time (log records, JSON lines) and bounded waits on
 * them: `until` re-checks its probe on every push, not on a polling timer.
 */
export class Arrivals<T> {
  readonly items: T[] = [];
  private readonly wakers = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    for (const wake of [...this.wakers]) wake();
  }

  /** Resolves with the first result of `probe` that is not undefined; rejects after `timeoutMs`. */
  async until<R>(probe: (items: T[]) => R | undefined, timeoutMs: number, what: string): Promise<R> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = probe(this.items);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for ${what} (${this.items.length} entries after ${timeoutMs} ms)`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.wakers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.wakers.add(wake);
      });
    }
  }
}

// ---- files --------------------------------------------------------------------

/** Anything with an `after` hook: a TestContext, or node:test's module-level `after` by default. */
export interface Cleanup {
  after(fn: () => void | Promise<void>): void;
}

/**
 * A fresh directory under the system temp dir, removed when `owner` ends
 * (pass the test's context `t` to remove it after that test, pass or fail;
 * without one it goes when the file's tests are done).
 */
export function tempDir(prefix: string, owner?: Cleanup): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  if (owner) owner.after(remove);
  else after(remove);
  return dir;
}

// ---- TCP peers --------------------------------------------------------------

export interface Peer {
  server: Server;
  port: number;
  /** Sockets accepted so far. */
  accepted: Socket[];
  close(): Promise<void>;
}

/** A backend; `onSocket` decides what it does with each connection (default: echo, FIN after the client's FIN). */
export async function backend(onSocket: (s: Socket) => void = echo): Promise<Peer> {
  const accepted: Socket[] = [];
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    accepted.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    server: srv,
    port: (srv.address() as AddressInfo).port,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of accepted) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

export function echo(s: Socket): void {
  s.pipe(s);
}

/** A backend that answers every chunk with its own name, to tell upstreams apart. */
export function namedBackend(name: string): Promise<Peer> {
  return backend((s: Socket) => {
    s.on('data', () => s.write(name));
    s.on('end', () => s.end());
  });
}

/** Sends one byte and resolves with the first chunk of the answer (bounded). */
export async function ask(s: Socket): Promise<string> {
  const answer = new Promise<string>((resolve, reject) => {
    s.once('data', (d) => resolve(d.toString()));
    s.once('error', reject);
  });
  s.write('?');
  return within(answer, 5000, 'answer');
}

/** A port with nothing listening on it (bound then released). */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export function dial(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: opts.allowHalfOpen ?? false });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

export type Ending = { kind: 'end' } | { kind: 'error'; code: string | undefined } | { kind: 'close' };

/** How the peer ended a socket: FIN ('end' then close), RST (ECONNRESET) or a bare close. Bounded. */
export function ending(s: Socket, timeoutMs = 10_000): Promise<Ending> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('socket did not end in time')), timeoutMs);
    const done = (e: Ending) => {
      clearTimeout(t);
      resolve(e);
    };
    s.on('data', () => {});
    s.once('end', () => done({ kind: 'end' }));
    s.once('error', (e: NodeJS.ErrnoException) => done({ kind: 'error', code: e.code }));
    s.once('close', () => done({ kind: 'close' }));
  });
}

/** SHA-256 of one buffer or of chunks in order. */
export function sha256(data: Buffer | Buffer[]): string {
  const h = createHash('sha256');
  for (const c of Array.isArray(data) ? data : [data]) h.update(c);
  return h.digest('hex');
}

// ---- the real `keepwire serve` process ---------------------------------------

export type LogLine = Record<string, unknown>;

export interface ServeCli {
  child: ChildProcess;
  /** The config file (rewrite it, then SIGHUP, to reload). */
  file: string;
  /** Every JSON line on stdout so far. */
  lines: LogLine[];
  stderr(): string;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Resolves with the first line matching `pred`, re-checked as lines arrive (bounded). */
  waitFor(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Resolves once stderr matches `re` (bounded; stderr and stdout are separate pipes). */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<void>;
}

/**
 * Writes `config` to keepwire.conf in a temporary directory and runs
 * `keepwire serve -c` on it. When the test ends, pass or fail, the process is
 * killed (SIGKILL, if still running) and the directory removed.
 */
export function serveCli(t: Cleanup, config: string): ServeCli {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-serve-'));
  const file = join(dir, 'keepwire.conf');
  writeFileSync(file, config);
  const child = spawn(process.execPath, [MAIN, 'serve', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = new Arrivals<LogLine>();
  const errors = new Arrivals<string>();
  let err = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(JSON.parse(line) as LogLine);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    errors.push(err);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    try {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await within(exited, 5000, 'keepwire serve exit after SIGKILL');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return {
    child,
    file,
    lines: lines.items,
    stderr: () => err,
    exited,
    waitFor: (pred, what, timeoutMs = 10_000) => lines.until((ls) => ls.find(pred), timeoutMs, what),
    async waitForStderr(re, timeoutMs = 2000) {
      await errors.until(() => (re.test(err) ? true : undefined), timeoutMs, `stderr matching ${re}`);
    },
  };
}
