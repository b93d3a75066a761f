/**
 * What the worker_processes tests share: a real `keepwire serve` master with
 * its workers, their pids and descriptors read from /proc, and a keep-alive
 * HTTP client load that counts what a client would see.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import type { Cleanup } from '../support.js';
import { type ServeCli, serveCli, sleep } from '../support.js';

export interface Master extends ServeCli {
  pid: number;
}

/** A master with workers, once it logged `started` (its own line, not a worker's). */
export async function startMaster(t: Cleanup, config: string, timeoutMs = 30_000): Promise<Master> {
  let pid = 0;
  // Registered before serveCli's own clean-up (which SIGKILLs the master):
  // the workers of a killed master would otherwise drain on their own.
  t.after(() => {
    for (const w of childrenOf(pid)) {
      try {
        process.kill(w, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
  const serve = serveCli(t, config);
  pid = serve.child.pid!;
  await serve.waitFor((l) => l.msg === 'started' && l.pid === pid, 'master started', timeoutMs);
  return Object.assign(serve, { pid });
}

/** The live child processes of `pid` (its workers). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export interface LoadStats {
  /** Complete responses with a status below 500. */
  ok: number;
  /** Resets, truncated responses, 5xx, refused connects, timeouts: what a client sees as a failure. */
  errors: number;
  /** Connections the server closed cleanly before a response began: the client reconnects and resends. */
  cleanCloses: number;
  /** Responses with `Connection: close` (the client then reconnects). */
  closeAnnounced: number;
  errorSamples: string[];
}

export function newStats(): LoadStats {
  return { ok: 0, errors: 0, cleanCloses: 0, closeAnnounced: 0, errorSamples: [] };
}

type Outcome =
  | { kind: 'ok'; status: number; close: boolean }
  | { kind: 'clean-close' }
  | { kind: 'error'; why: string };

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', noDelay: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** One GET on `sock`; what came back, as a client honouring `Connection: close` judges it. */
function exchange(sock: Socket, path: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    let settled = false;
    const finish = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', onError);
      sock.off('close', onClose);
      resolve(o);
    };
    const timer = setTimeout(() => finish({ kind: 'error', why: 'timeout' }), timeoutMs);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      const close = /\r\nconnection: *close/i.test(head);
      if (status === 0 || status >= 500) finish({ kind: 'error', why: `status ${status}` });
      else finish({ kind: 'ok', status, close });
    };
    // A FIN before any byte of the answer: the server closed an idle
    // connection; the request was not taken, the client sends it again.
    const onEnd = () =>
      finish(buf.length === 0 ? { kind: 'clean-close' } : { kind: 'error', why: 'truncated response' });
    const onError = (e: NodeJS.ErrnoException) => finish({ kind: 'error', why: e.code ?? e.message });
    const onClose = () =>
      finish(buf.length === 0 ? { kind: 'clean-close' } : { kind: 'error', why: 'closed' });
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', onError);
    sock.on('close', onClose);
    sock.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`);
  });
}

/**
 * `clients` keep-alive clients, each sending GETs one after another until
 * `running()` is false or `maxRequests` each; a client reconnects after
 * `Connection: close` or a clean close before a response.
 */
export async function keepAliveLoad(
  port: number,
  opts: { clients: number; running: () => boolean; maxRequests: number; path?: string; stats?: LoadStats },
): Promise<LoadStats> {
  const stats = opts.stats ?? newStats();
  const error = (why: string) => {
    stats.errors++;
    if (stats.errorSamples.length < 10) stats.errorSamples.push(why);
  };
  await Promise.all(
    Array.from({ length: opts.clients }, async () => {
      let sock: Socket | undefined;
      for (let i = 0; i < opts.maxRequests && opts.running(); i++) {
        if (sock === undefined) {
          try {
            sock = await dial(port);
            sock.on('error', () => {});
          } catch (e) {
            error(`connect ${(e as NodeJS.ErrnoException).code}`);
            continue;
          }
        }
        const o = await exchange(sock, opts.path ?? '/', 10_000);
        if (o.kind === 'ok') {
          stats.ok++;
          if (o.close) {
            stats.closeAnnounced++;
            sock.destroy();
            sock = undefined;
          }
        } else {
          sock.destroy();
          sock = undefined;
          if (o.kind === 'clean-close') {
            stats.cleanCloses++;
            i--; // the same request again, on a new connection
          } else error(o.why);
        }
      }
      sock?.end();
    }),
  );
  return stats;
}

/**
 * `reloads` SIGHUPs of `serve` under a keep-alive load of `clients` clients:
 * each must end in the `reloaded` line of the process `from` (the master,
 * when workers log too), and traffic must go on on the new generation
 * (20 more answers) before the next. The load is stopped and awaited
 * whatever happens; its stats are the test's to judge.
 */
export async function reloadsUnderLoad(
  serve: ServeCli,
  port: number,
  opts: { reloads: number; clients: number; timeoutMs: number; from?: number },
): Promise<LoadStats> {
  let running = true;
  const stats = newStats();
  const load = keepAliveLoad(port, {
    clients: opts.clients,
    maxRequests: 1_000_000,
    running: () => running,
    stats,
  });
  try {
    for (let i = 0; i < opts.reloads; i++) {
      const seen = serve.lines.length;
      serve.child.kill('SIGHUP');
      const outcome = await serve.waitFor(
        (l) =>
          serve.lines.indexOf(l) >= seen &&
          (opts.from === undefined || l.pid === opts.from) &&
          (l.msg === 'reloaded' || /reload (rejected|failed)/.test(String(l.msg))),
        `reload ${i + 1}`,
        opts.timeoutMs,
      );
      assert.equal(outcome.msg, 'reloaded', JSON.stringify(outcome));
      const okNow = stats.ok;
      while (stats.ok < okNow + 20 && stats.errors === 0) await sleep(10);
    }
  } finally {
    running = false;
    await load;
  }
  return stats;
}

/** What a client load saw, in one diagnostic line. */
export function loadSummary(stats: LoadStats): string {
  return `${stats.ok} responses, ${stats.closeAnnounced} with Connection: close, ${stats.cleanCloses} clean closes before an answer, ${stats.errors} errors`;
}

/** Polls `done` every 100 ms until it holds or `ms` pass (the caller asserts what it waited for). */
export async function pollUntil(done: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await sleep(100);
}
