/**
 * Short sessions in one run: one TCP connection per request (wrk -H
 * 'Connection: close'), on the HTTP proxy and on the stream proxy, against
 * nginx, HAProxy and two floors written in plain Node.
 *
 *   node dist/bench/short.js [--seconds 3] [--connections 64] [--rounds 5] [--warmup 2]
 *   KEEPWIRE_BEFORE=/old/tree/dist/src/cli/main.js node dist/bench/short.js   (adds an older build)
 *
 * The backend is an nginx (2 workers) answering 98 bytes; every HTTP proxy
 * keeps a warm keep-alive pool to it, so an HTTP session costs the proxy
 * one accept, one request, one response and one close. The stream proxies
 * carry the same wrk request to the same backend, which closes after its
 * response (the request said `Connection: close`), so a stream session is
 * accept + connect + two one-read transfers + two closes.
 *
 * Targets, each one process / worker / thread:
 *   HTTP:   keepwire (access_log off), nginx (1 worker, upstream keepalive),
 *           HAProxy (1 thread, http-reuse always), and the HTTP floor: a Node
 *           `net` server that parses nothing and forwards the request's bytes
 *           over a warm upstream connection (see runHttpFloor);
 *   stream: keepwire `stream {}` (logging every session, and with
 *           `access_log off` as nginx stream's default), nginx stream, HAProxy mode tcp, and the
 *           stream floor: a Node `net` pipe (accept, connect, pipe both ways).
 * The proxy under test runs alone on CPU 1; wrk, the backend and this process
 * on CPU 0 (`taskset`). Rounds are interleaved across targets; each figure is
 * a target's median run. CPU µs/session = the proxy's process tree's
 * user+system time from /proc over the sessions wrk completed.
 *
 * Not a test: prints a table and the ratios keepwire/nginx, keepwire/floor.
 */
import { connect, createServer, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  arg,
  freePort,
  MAIN,
  nginxBackendHttp,
  nginxProxyHttp,
  pin,
  type RawStreamBindings,
  type RawTcpHandle,
  startNginx,
  version,
  Workspace,
  type WrkResult,
  waitListening,
  wrk,
} from './common.js';

const SELF = fileURLToPath(import.meta.url);

/**
 * The stream floor: what a Node stream proxy cannot do with less, one
 * `net.Socket` per side and `pipe` both ways. No timers, no log, no limits.
 */
function runPipeFloor(listenPort: number, target: number): void {
  createServer({ noDelay: true }, (client) => {
    const upstream = connect({ port: target, host: '127.0.0.1', noDelay: true });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  }).listen(listenPort, '127.0.0.1');
}

/**
 * The HTTP floor: accept, read the request (one read), forward its bytes on
 * a warm upstream connection, write the response (one read) back with
 * `Connection: close` added after its status line, end the client. It
 * parses nothing: wrk's request arrives whole in one read and the backend's
 * 250-byte response too (true on loopback for this load), and the only edit
 * of the request is renaming its `Connection: close` header in place so the
 * upstream connection stays open. What is left is the per-connection cost of
 * a Node `net.Socket` on the client side: the floor for keepwire's HTTP
 * short sessions.
 */
function runHttpFloor(listenPort: number, target: number): void {
  const forward = warmUpstreams<Socket>(
    target,
    (client, response) => client.end(response),
    (client) => client.destroy(),
  );
  createServer({ noDelay: true }, (client) => {
    client.on('error', () => {});
    client.once('data', (req: Buffer) => forward(client, req));
  }).listen(listenPort, '127.0.0.1');
}

/**
 * The upstream side of both HTTP floors: warm keep-alive connections to
 * `target`. `forward(client, request)` renames the request's `Connection:
 * close` in place (so the upstream connection stays open) and writes it on an
 * idle connection, or a new one; the response (one read) goes to `answer`
 * with `Connection: close` added after its status line, and the connection is
 * idle again. `lost` hears of a client whose upstream closed first.
 */
function warmUpstreams<C>(
  target: number,
  answer: (client: C, response: Buffer) => void,
  lost: (client: C) => void = () => {},
): (client: C, request: Buffer) => void {
  const CLOSE = Buffer.from('Connection: close');
  const RENAMED = Buffer.from('Xonnection: close');
  const CLOSE_LINE = Buffer.from('Connection: close\r\n');
  const idle: Socket[] = [];
  const owner = new Map<Socket, C>();
  const upstream = (): Socket => {
    const warm = idle.pop();
    if (warm) return warm;
    const s = connect({ port: target, host: '127.0.0.1', noDelay: true });
    s.on('data', (res: Buffer) => {
      const client = owner.get(s);
      owner.delete(s);
      idle.push(s);
      if (client === undefined) return;
      const eol = res.indexOf('\r\n') + 2;
      answer(client, Buffer.concat([res.subarray(0, eol), CLOSE_LINE, res.subarray(eol)]));
    });
    s.on('error', () => {});
    s.on('close', () => {
      const i = idle.indexOf(s);
      if (i >= 0) idle.splice(i, 1);
      const client = owner.get(s);
      owner.delete(s);
      if (client !== undefined) lost(client);
    });
    return s;
  };
  return (client, request) => {
    const i = request.indexOf(CLOSE);
    if (i >= 0) RENAMED.copy(request, i);
    const u = upstream();
    owner.set(u, client);
    u.write(request);
  };
}

// ---- Floors beneath net.Socket: libuv TCP handles straight from Node's bindings ----
// Bench-only (process.binding, as src/kernel/node-internals.ts does for the
// write path): what a session costs when no net.Socket, stream state or
// event emitter is made for it, the syscalls being the same.

interface Handle extends RawTcpHandle<Handle> {
  // Fields of our own on the handle object.
  pair?: HandlePair;
  peer?: Handle;
}
interface Bindings {
  TCP: new (kind: number) => Handle;
  TCPConnectWrap: new () => { oncomplete: (status: number) => void; pair?: HandlePair };
  constants: { SOCKET: number; SERVER: number };
}
const binding = (name: string) => (process as unknown as { binding(n: string): unknown }).binding(name);
const UV_EOF = -4095;
const noop = () => {};

/** One client handle and its upstream handle; closed together once both sides sent FIN. */
class HandlePair {
  readonly u: Handle;
  private eofs = 0;
  private closed = false;
  constructor(
    readonly c: Handle,
    tcp: Bindings,
    target: number,
  ) {
    this.u = new tcp.TCP(tcp.constants.SOCKET);
    c.pair = this;
    this.u.pair = this;
    c.peer = this.u;
    this.u.peer = c;
    c.setNoDelay(true);
    this.u.setNoDelay(true);
    c.onread = pipeRead;
    this.u.onread = pipeRead;
    const req = new tcp.TCPConnectWrap();
    req.pair = this;
    req.oncomplete = function (this: { pair: HandlePair }, status: number) {
      if (status < 0) this.pair.close();
      else {
        this.pair.c.readStart();
        this.pair.u.readStart();
      }
    };
    if (this.u.connect(req, '127.0.0.1', target) !== 0) this.close();
  }
  eof(): boolean {
    return ++this.eofs === 2;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.c.close(noop);
    this.u.close(noop);
  }
}

let sb: RawStreamBindings;
function writeTo(h: Handle, buf: Buffer): number {
  const w = new sb.WriteWrap();
  w.handle = h;
  w.oncomplete = noop;
  w.async = false;
  w.buffer = buf;
  return h.writeBuffer(w, buf);
}

function pipeRead(this: Handle, ab: ArrayBuffer | undefined): void {
  const n = sb.streamBaseState[sb.kReadBytesOrError]!;
  const pair = this.pair!;
  if (n > 0) {
    const buf = Buffer.from(ab!, sb.streamBaseState[sb.kArrayBufferOffset]!, n);
    if (writeTo(this.peer!, buf) !== 0) pair.close();
  } else if (n === UV_EOF) {
    this.readStop();
    if (pair.eof()) pair.close();
    else {
      const s = new sb.ShutdownWrap();
      s.handle = this.peer;
      s.oncomplete = noop;
      this.peer!.shutdown(s);
    }
  } else if (n < 0) pair.close();
}

function handleServer(tcp: Bindings, port: number, onConnection: (client: Handle) => void): void {
  const server = new tcp.TCP(tcp.constants.SERVER);
  if (server.bind('127.0.0.1', port) !== 0 || server.listen(511) !== 0)
    throw new Error(`cannot listen on ${port}`);
  server.onconnection = (err, client) => {
    if (err === 0) onConnection(client);
  };
}

/** The stream floor beneath net.Socket: accept, connect, pipe, FIN both ways, close, all on TCP handles. */
function runHandlePipeFloor(listenPort: number, target: number): void {
  const tcp = binding('tcp_wrap') as Bindings;
  sb = binding('stream_wrap') as RawStreamBindings;
  handleServer(tcp, listenPort, (client) => new HandlePair(client, tcp, target));
}

/**
 * The HTTP floor beneath net.Socket on the client side (the upstream side
 * is a warm net.Socket, as in runHttpFloor): the same bytes, edits and
 * one-read assumptions as runHttpFloor.
 */
function runHandleHttpFloor(listenPort: number, target: number): void {
  const tcp = binding('tcp_wrap') as Bindings;
  sb = binding('stream_wrap') as RawStreamBindings;
  const forward = warmUpstreams<Handle>(target, (client, response) => {
    writeTo(client, response);
    const sh = new sb.ShutdownWrap();
    sh.handle = client;
    sh.oncomplete = noop;
    client.shutdown(sh);
  });
  handleServer(tcp, listenPort, (client) => {
    client.setNoDelay(true);
    client.onread = function (this: Handle, ab: ArrayBuffer | undefined) {
      const n = sb.streamBaseState[sb.kReadBytesOrError]!;
      if (n > 0) {
        // A copy: the read's memory is the handle's to reuse.
        forward(this, Buffer.from(Buffer.from(ab!, sb.streamBaseState[sb.kArrayBufferOffset]!, n)));
      } else if (n < 0) {
        this.readStop();
        this.close(noop);
      }
    };
    client.readStart();
  });
}

interface Target {
  name: string;
  port: number;
  /** Root of the process tree whose CPU time is charged to this target. */
  pid: number;
  kind: 'http' | 'stream' | 'direct';
}

async function main(): Promise<void> {
  if (process.argv[2] === '--pipe-floor')
    return runPipeFloor(Number(process.argv[3]), Number(process.argv[4]));
  if (process.argv[2] === '--http-floor')
    return runHttpFloor(Number(process.argv[3]), Number(process.argv[4]));
  if (process.argv[2] === '--handle-pipe-floor')
    return runHandlePipeFloor(Number(process.argv[3]), Number(process.argv[4]));
  if (process.argv[2] === '--handle-http-floor')
    return runHandleHttpFloor(Number(process.argv[3]), Number(process.argv[4]));
  const seconds = arg('seconds', 3);
  const connections = arg('connections', 64);
  const rounds = arg('rounds', 5);
  const warmup = arg('warmup', 2);
  const before = process.env.KEEPWIRE_BEFORE;
  const ws = new Workspace('keepwire-bench-short-');
  try {
    const backend = await freePort();
    const backendPid = startNginx(ws, 'backend', nginxBackendHttp(backend), { workers: 2 }).pid!;
    const targets: Target[] = [
      { name: 'direct (nginx backend, 2 workers)', port: backend, pid: backendPid, kind: 'direct' },
    ];

    const keepwire = async (name: string, main: string, kind: 'http' | 'stream', streamLog = true) => {
      const port = await freePort();
      const conf = ws.write(
        `keepwire-${targets.length}.conf`,
        kind === 'http'
          ? `http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${port};
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
    }
}
`
          : `events { worker_connections 4096; }
stream {
    server { listen 127.0.0.1:${port}; proxy_pass 127.0.0.1:${backend};${streamLog ? '' : ' access_log off;'} }
}
`,
      );
      // Session lines (one JSON line per session unless access_log off) go to /dev/null.
      const pid = ws.spawn(process.execPath, [main, 'serve', '-c', conf]).pid!;
      targets.push({ name, port, pid, kind });
    };
    // PART=stream (or http): only that half's targets (the direct backend always).
    const part = process.env.PART ?? 'all';
    const http = part !== 'stream';
    const stream = part !== 'http';
    if (http) await keepwire('keepwire HTTP', MAIN, 'http');
    if (http && before) await keepwire(`keepwire HTTP before (${before})`, before, 'http');
    if (http) {
      const port = await freePort();
      const pid = startNginx(
        ws,
        'nginx-http',
        nginxProxyHttp({ port, backendPort: backend, pool: 64, accessLog: 'off' }),
      ).pid!;
      targets.push({ name: 'nginx HTTP', port, pid, kind: 'http' });
    }
    const haproxy = async (name: string, mode: 'http' | 'tcp') => {
      const port = await freePort();
      const conf = ws.write(
        `${name}.cfg`,
        `global
    maxconn 4096
    nbthread 1
defaults
    mode ${mode}
    timeout connect 5s
    timeout client 60s
    timeout server 60s
${mode === 'http' ? '    http-reuse always\n' : ''}listen web
    bind 127.0.0.1:${port}
    server s 127.0.0.1:${backend}
`,
      );
      const pid = ws.spawn('haproxy', ['-f', conf, '-db']).pid!;
      targets.push({ name, port, pid, kind: mode === 'http' ? 'http' : 'stream' });
    };
    if (http) await haproxy('HAProxy HTTP', 'http');
    if (http) {
      const port = await freePort();
      const pid = ws.spawn(process.execPath, [SELF, '--http-floor', String(port), String(backend)]).pid!;
      targets.push({ name: 'floor: Node net, bytes over a warm upstream', port, pid, kind: 'http' });
    }
    if (http) {
      const port = await freePort();
      const pid = ws.spawn(process.execPath, [SELF, '--handle-http-floor', String(port), String(backend)])
        .pid!;
      targets.push({ name: 'floor: Node TCP handles, bytes over a warm upstream', port, pid, kind: 'http' });
    }
    if (stream) await keepwire('keepwire stream', MAIN, 'stream');
    // nginx stream logs nothing by default: this is keepwire doing the same.
    if (stream) await keepwire('keepwire stream access_log off', MAIN, 'stream', false);
    if (stream && before) await keepwire(`keepwire stream before (${before})`, before, 'stream');
    if (stream && before)
      await keepwire(`keepwire stream access_log off before (${before})`, before, 'stream', false);
    if (stream) {
      const port = await freePort();
      const pid = startNginx(
        ws,
        'nginx-stream',
        `stream {
    server { listen 127.0.0.1:${port}; proxy_pass 127.0.0.1:${backend}; }
}
`,
        { preamble: 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n' },
      ).pid!;
      targets.push({ name: 'nginx stream', port, pid, kind: 'stream' });
    }
    if (stream) await haproxy('HAProxy tcp', 'tcp');
    if (stream) {
      const port = await freePort();
      const pid = ws.spawn(process.execPath, [SELF, '--pipe-floor', String(port), String(backend)]).pid!;
      targets.push({ name: 'floor: Node net pipe', port, pid, kind: 'stream' });
    }
    if (stream) {
      const port = await freePort();
      const pid = ws.spawn(process.execPath, [SELF, '--handle-pipe-floor', String(port), String(backend)])
        .pid!;
      targets.push({ name: 'floor: Node TCP handle pipe', port, pid, kind: 'stream' });
    }
    for (const t of targets) await waitListening(t.port);

    const pinned = cpus().length >= 2;
    if (pinned) {
      pin(process.pid, '0');
      for (const t of targets) if (t.pid !== backendPid) pin(t.pid, '1');
    }
    console.log(
      `${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Linux ${version('uname', ['-r'])}, node ${process.version}, ${version('nginx', ['-v'])}, ${version('haproxy', ['-v'])}; load average at start ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    console.log(
      `wrk -t1 -c${connections} -d${seconds}s -H 'Connection: close', 98-byte responses; ${pinned ? 'each proxy alone on CPU 1, wrk and the backend on CPU 0; ' : ''}median of ${rounds} interleaved runs per target (after ${warmup} s of warm-up each)\n`,
    );
    const close = ['Connection: close'];
    for (const t of targets) await wrk(t.name, t.port, warmup, connections, { headers: close });
    const runs = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < rounds; round++)
      for (const t of targets)
        runs
          .get(t.name)!
          .push(await wrk(t.name, t.port, seconds, connections, { headers: close, cpuOf: t.pid }));

    console.log(
      '| target | sessions/s | p99 ms | CPU µs/session | median CPU µs/session of the runs | sessions/s of each run | CPU µs/session of each run | errors |',
    );
    console.log('|---|---|---|---|---|---|---|---|');
    const med = new Map<string, WrkResult>();
    for (const t of targets) {
      const list = runs.get(t.name)!;
      const sorted = [...list].sort((a, b) => a.rps - b.rps);
      const r = sorted[Math.floor(sorted.length / 2)]!;
      med.set(t.name, r);
      const cpu = list.map((x) => x.cpuUsPerReq).sort((a, b) => a - b);
      console.log(
        `| ${t.name} | ${Math.round(r.rps)} | ${r.p99Ms.toFixed(2)} | ${r.cpuUsPerReq.toFixed(1)} | ${cpu[Math.floor(cpu.length / 2)]!.toFixed(1)} | ${list.map((x) => Math.round(x.rps)).join(' / ')} | ${list.map((x) => x.cpuUsPerReq.toFixed(0)).join(' / ')} | ${r.errors} |`,
      );
    }
    const ratio = (a: string, b: string) => {
      const x = med.get(a);
      const y = med.get(b);
      if (x === undefined || y === undefined) return 'not run';
      const perRound = runs
        .get(a)!
        .map((r, i) => (r.rps / runs.get(b)![i]!.rps).toFixed(2))
        .join(' / ');
      return `sessions/s ${(x.rps / y.rps).toFixed(2)}× (rounds ${perRound}), CPU/session ${(x.cpuUsPerReq / y.cpuUsPerReq).toFixed(2)}×`;
    };
    console.log('');
    console.log(`keepwire HTTP / nginx HTTP: ${ratio('keepwire HTTP', 'nginx HTTP')}`);
    console.log(`keepwire HTTP / HAProxy HTTP: ${ratio('keepwire HTTP', 'HAProxy HTTP')}`);
    console.log(
      `keepwire HTTP / HTTP floor: ${ratio('keepwire HTTP', 'floor: Node net, bytes over a warm upstream')}`,
    );
    console.log(
      `HTTP floor / nginx HTTP: ${ratio('floor: Node net, bytes over a warm upstream', 'nginx HTTP')}`,
    );
    console.log(`keepwire stream / nginx stream: ${ratio('keepwire stream', 'nginx stream')}`);
    console.log(
      `keepwire stream access_log off / nginx stream (neither logging): ${ratio('keepwire stream access_log off', 'nginx stream')}`,
    );
    console.log(
      `keepwire stream access_log off / on: ${ratio('keepwire stream access_log off', 'keepwire stream')}`,
    );
    console.log(`keepwire stream / HAProxy tcp: ${ratio('keepwire stream', 'HAProxy tcp')}`);
    console.log(`keepwire stream / Node net pipe: ${ratio('keepwire stream', 'floor: Node net pipe')}`);
    console.log(`Node net pipe / nginx stream: ${ratio('floor: Node net pipe', 'nginx stream')}`);
    console.log(
      `Node TCP handle pipe / nginx stream: ${ratio('floor: Node TCP handle pipe', 'nginx stream')}`,
    );
    console.log(
      `Node TCP handles HTTP floor / nginx HTTP: ${ratio('floor: Node TCP handles, bytes over a warm upstream', 'nginx HTTP')}`,
    );
    if (before) {
      console.log(
        `keepwire HTTP now / before: ${ratio('keepwire HTTP', `keepwire HTTP before (${before})`)}`,
      );
      console.log(
        `keepwire stream now / before: ${ratio('keepwire stream', `keepwire stream before (${before})`)}`,
      );
      console.log(
        `keepwire stream access_log off now / before: ${ratio('keepwire stream access_log off', `keepwire stream access_log off before (${before})`)}`,
      );
    }
    console.log(
      `keepwire stream access_log off / Node TCP handle pipe: ${ratio('keepwire stream access_log off', 'floor: Node TCP handle pipe')}`,
    );
    console.log(
      `load average at end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await ws.stop();
  }
}

await main();
