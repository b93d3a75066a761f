/**
 * What holding idle connections below `net.Socket` would save (issue #20 item
 * 2, docs/performance.md "L7: memory per idle keep-alive client connection"):
 * a server process holds N accepted connections, each of which sent one
 * request, either as Node `net.Socket`s (reading, like a bare `net.Server`)
 * or as bare TCP handles that only read (`readStart` with an `onread` that
 * does nothing: what an idle keep-alive connection needs to notice its next
 * request or the client's close).
 *
 *   node dist/bench/idle-handle-floor.js [--connections 9000] [--rounds 2]
 *
 * Per mode and round: a fresh server process (`--expose-gc`), a full GC and
 * an RSS reading, N connections (64 at a time) each writing one request,
 * 15 s idle, a full GC, a second reading; per connection the RSS and
 * heapUsed differences. The handle mode takes the accepted handles with
 * `server._handle.onconnection`, a private Node API, here only (a bench:
 * keepwire itself has none such outside src/kernel/node-internals.ts). The
 * parked mode makes a net.Socket and, 1 s after its request, keeps only its
 * handle, still reading, with keepwire's `detachHandle` (as
 * src/proxy/http/parked.ts does).
 * Not a test; every connection is closed and every child stopped at the end.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { detachHandle } from '../src/kernel/node-internals.js';
import { arg } from './common.js';

const SELF = fileURLToPath(import.meta.url);
const MODES = ['socket', 'handle', 'parked'] as const;
type Mode = (typeof MODES)[number];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

interface TcpHandle {
  onread: () => void;
  readStart(): number;
}

/** A parked handle's onread: a module-level function (a closure made here would hold the socket). */
function ignoreRead(): void {}

/** Child mode: accept and hold connections as `mode` says; answer 'gc' with the heap after a full GC. */
function server(mode: Mode): void {
  const held: unknown[] = [];
  const srv: Server = createServer((s) => {
    s.on('error', () => {});
    if (mode === 'parked') {
      // As keepwire parks an idle connection: a net.Socket first, then only its handle, still reading.
      s.once('data', () =>
        setTimeout(() => {
          s.removeAllListeners();
          const h = detachHandle(s, ignoreRead);
          held.push(h ?? s);
        }, 1000),
      );
      return;
    }
    held.push(s);
    s.on('data', () => {});
  });
  srv.listen(0, '127.0.0.1', () => {
    if (mode === 'handle') {
      const listening = (srv as unknown as { _handle: { onconnection: (err: number, h: TcpHandle) => void } })
        ._handle;
      listening.onconnection = (err, h) => {
        if (err) return;
        h.onread = () => {};
        h.readStart();
        held.push(h);
      };
    }
    process.send?.({ port: (srv.address() as AddressInfo).port });
  });
  process.on('message', (m) => {
    if (m !== 'gc') return;
    const gc = (globalThis as { gc?: () => void }).gc!;
    gc();
    gc();
    process.send?.({ heapUsed: process.memoryUsage().heapUsed, held: held.length });
  });
}

async function measure(mode: Mode, n: number): Promise<{ rss: number; heap: number; held: number }> {
  const child: ChildProcess = fork(SELF, ['--server', mode], { execArgv: ['--expose-gc'] });
  const next = <T>(m?: string) =>
    new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('server did not answer')), 30_000);
      child.once('message', (v) => {
        clearTimeout(t);
        resolve(v as T);
      });
      if (m !== undefined) child.send(m);
    });
  const sockets: Socket[] = [];
  try {
    const { port } = await next<{ port: number }>();
    await sleep(3000);
    const g0 = await next<{ heapUsed: number }>('gc');
    await sleep(1000);
    const r0 = rssBytes(child.pid!);
    for (let i = 0; i < n; i += 64) {
      const batch = Array.from(
        { length: Math.min(64, n - i) },
        () =>
          new Promise<void>((resolve, reject) => {
            const c = connect(port, '127.0.0.1', () => {
              c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
              resolve();
            });
            sockets.push(c);
            c.on('error', reject);
          }),
      );
      await Promise.all(batch);
    }
    await sleep(15_000);
    const g1 = await next<{ heapUsed: number; held: number }>('gc');
    await sleep(1000);
    const r1 = rssBytes(child.pid!);
    return { rss: (r1 - r0) / n / 1024, heap: (g1.heapUsed - g0.heapUsed) / n / 1024, held: g1.held };
  } finally {
    for (const c of sockets) c.destroy();
    child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--server') {
    server(process.argv[3] as Mode);
    return;
  }
  const n = arg('connections', 9000);
  const rounds = arg('rounds', 2);
  process.stdout.write(`date: ${new Date().toISOString()}\nnode: ${process.version}, ${n} connections\n\n`);
  process.stdout.write(
    '| round | held as | connections held | RSS per connection KiB | heapUsed KiB |\n|---|---|---|---|---|\n',
  );
  for (let r = 1; r <= rounds; r++)
    for (const mode of MODES) {
      const m = await measure(mode, n);
      const name =
        mode === 'socket'
          ? 'net.Socket'
          : mode === 'handle'
            ? 'TCP handle only'
            : 'net.Socket, then parked (handle only)';
      process.stdout.write(`| ${r} | ${name} | ${m.held} | ${m.rss.toFixed(2)} | ${m.heap.toFixed(2)} |\n`);
      await sleep(500);
    }
}

const giveUp = setTimeout(() => {
  process.stderr.write('gave up after 10 minutes\n');
  process.exit(1);
}, 10 * 60_000);
giveUp.unref();
await main();
