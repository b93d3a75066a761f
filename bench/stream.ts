/**
 * The L4 (stream) proxy in one run, against nginx stream (1 worker), HAProxy
 * mode tcp (1 thread) and two Node floors, all on loopback, interleaved
 * rounds, each proxy pinned alone on CPU 1 and everything else (load
 * generators, backends, this process) on CPU 0, as bench/short.ts and
 * bench/http.ts pin.
 *
 *   node dist/bench/stream.js [--bulk-mb 256] [--seconds 3] [--connections 64] [--rounds 5]
 *                             [--warmup 1] [--short-seconds 0] [--concurrency 32]
 *   KEEPWIRE_BEFORE=/old/tree/dist/src/cli/main.js node dist/bench/stream.js   (adds an older build)
 *   ONLY=keepwire,nginx node dist/bench/stream.js   (targets whose name contains one of these)
 *
 * Parts, each measured on every target in every round:
 *   bulk: one connection uploads N MiB through the proxy to a Node sink that
 *     acknowledges the last byte (MB/s), and the proxy's CPU µs per MiB;
 *   keep-alive request/response: `wrk -t1 -c64` keep-alive GETs through the
 *     proxy to one nginx HTTP backend (1 worker, 98-byte responses, as
 *     bench/http.ts's backend): req/s, p99, and the proxy's CPU µs per request;
 *   short sessions (only with --short-seconds N): C parallel clients each connect,
 *     send 1 byte, get it echoed, and the backend closes (conn/s).
 *     bench/short.ts is the pinned short-session bench with CPU per session.
 * CPU is the proxy's process tree's user+system time from /proc over the part.
 * keepwire runs its `stream {}` as the bench always configured it: one JSON
 * session line per session (to /dev/null); the bulk and keep-alive parts open
 * one and 64 sessions per run, so the log is not part of what they measure.
 *
 * Floors, written for the bench: what a stream proxy on Node costs with
 * nothing but the bytes' syscalls:
 *   Node `net` pipe: `net.createServer` + `net.connect` + `pipe` both ways;
 *   Node TCP handle pipe: libuv TCP handles straight from Node's bindings (no
 *     net.Socket, no streams, no events), each direction reading into one
 *     reused 64 KiB buffer and writing from it (nginx's model), reads stopped
 *     while a write waits for the socket: what Node cannot do with less.
 * Each figure is the median of the rounds for that column; each round's
 * figure is printed too (the spread).
 */
import { type AddressInfo, connect, createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  arg,
  freePort,
  MAIN,
  nginxBackendHttp,
  pin,
  type RawStreamBindings,
  type RawTcpHandle,
  startNginx,
  treeCpuUs,
  version,
  Workspace,
  type WrkResult,
  waitListening,
  wrk,
} from './common.js';

const SELF = fileURLToPath(import.meta.url);

/** Backend process: port A sinks bulk uploads and acks the total; port B echoes one chunk then closes. */
function runBackend(): void {
  const bulkBytes = Number(process.argv[3]);
  const sink = createServer((s) => {
    let got = 0;
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= bulkBytes) s.end('k');
    });
    s.on('error', () => {});
  });
  const echo = createServer({ noDelay: true }, (s) => {
    s.once('data', (d) => s.end(d));
    s.on('error', () => {});
  });
  sink.listen(0, '127.0.0.1', () =>
    echo.listen(0, '127.0.0.1', () =>
      process.stdout.write(
        `${(sink.address() as AddressInfo).port} ${(echo.address() as AddressInfo).port}\n`,
      ),
    ),
  );
}

/** The `net` floor: one net.Socket per side and `pipe` both ways; no timers, no log, no limits. */
function runNetPipeFloor(listenPort: number): void {
  createServer({ noDelay: true }, (client) => {
    const upstream = connect({ port: FLOOR_TARGETS[client.localPort!]!, host: '127.0.0.1', noDelay: true });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  }).listen(listenPort, '127.0.0.1');
}

// ---- The floor beneath net.Socket: libuv TCP handles straight from Node's bindings ----

interface Handle extends RawTcpHandle<Handle> {
  peer?: Handle;
  /** What this handle reads into (its own, reused: nginx's model, one buffer per direction). */
  buf?: Buffer;
  /** Writes to this handle libuv still holds. */
  pending?: number;
  /** This handle's reads are stopped until its peer's writes complete. */
  stopped?: boolean;
  eof?: boolean;
  closed?: boolean;
  useUserBuffer(buf: Uint8Array): void;
}
interface TcpBindings {
  TCP: new (kind: number) => Handle;
  TCPConnectWrap: new () => { oncomplete: (status: number) => void; c?: Handle; u?: Handle };
  constants: { SOCKET: number; SERVER: number };
}
const binding = (name: string) => (process as unknown as { binding(n: string): unknown }).binding(name);
const UV_EOF = -4095;
const noop = () => {};
let sb: RawStreamBindings;

function closePair(h: Handle): void {
  for (const x of [h, h.peer!])
    if (!x.closed) {
      x.closed = true;
      x.close(noop);
    }
}

function writeDone(this: { handle: Handle }, status: number): void {
  const to = this.handle;
  to.pending!--;
  if (status < 0) {
    closePair(to);
    return;
  }
  const from = to.peer!;
  // Backpressure: the source reads again (into the buffer just written) once its peer took it all.
  if (to.pending === 0 && from.stopped && !from.closed) {
    from.stopped = false;
    from.readStart();
  }
}

function pipeRead(this: Handle): void {
  const n = sb.streamBaseState[sb.kReadBytesOrError]!;
  const to = this.peer!;
  if (n > 0) {
    const w = new sb.WriteWrap();
    w.handle = to;
    w.oncomplete = writeDone;
    w.async = false;
    const view = this.buf!.subarray(0, n);
    w.buffer = view;
    if (to.writeBuffer(w, view) !== 0) {
      closePair(this);
      return;
    }
    if (sb.streamBaseState[sb.kLastWriteWasAsync] !== 0) {
      // libuv holds the rest of this handle's buffer: no read into it until the write completes.
      to.pending = (to.pending ?? 0) + 1;
      this.stopped = true;
      this.readStop();
    }
  } else if (n === UV_EOF) {
    this.readStop();
    this.eof = true;
    if (to.eof) {
      closePair(this);
      return;
    }
    const s = new sb.ShutdownWrap();
    s.handle = to;
    s.oncomplete = noop;
    to.shutdown(s);
  } else if (n < 0) closePair(this);
}

/**
 * The stream floor beneath net.Socket: accept, connect, FIN both ways,
 * close, and the bytes read into one reused 64 KiB buffer per direction and
 * written from it, reads stopped while a write waits for the socket.
 */
function runHandlePipeFloor(listenPort: number): void {
  const tcp = binding('tcp_wrap') as TcpBindings;
  sb = binding('stream_wrap') as RawStreamBindings;
  const server = new tcp.TCP(tcp.constants.SERVER);
  if (server.bind('127.0.0.1', listenPort) !== 0 || server.listen(511) !== 0)
    throw new Error(`cannot listen on ${listenPort}`);
  server.onconnection = (err, c) => {
    if (err !== 0) return;
    const u = new tcp.TCP(tcp.constants.SOCKET);
    c.peer = u;
    u.peer = c;
    for (const h of [c, u]) {
      h.setNoDelay(true);
      h.buf = Buffer.allocUnsafeSlow(64 * 1024);
      h.useUserBuffer(h.buf);
      h.onread = pipeRead;
    }
    const req = new tcp.TCPConnectWrap();
    req.c = c;
    req.u = u;
    req.oncomplete = function (this: { c: Handle; u: Handle }, status: number) {
      if (status < 0) {
        closePair(this.c);
        return;
      }
      this.c.readStart();
      this.u.readStart();
    };
    if (u.connect(req, '127.0.0.1', FLOOR_TARGETS[listenPort]!) !== 0) closePair(c);
  };
}

/** A floor's listening port → the backend port it forwards to (argv: port=target pairs). */
const FLOOR_TARGETS: Record<number, number> = {};

async function bulk(port: number, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const began = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('error', reject);
    s.once('data', () => {
      s.destroy();
      resolve();
    });
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    s.once('connect', pump);
  });
  const seconds = Number(process.hrtime.bigint() - began) / 1e9;
  return bytes / 1024 / 1024 / seconds;
}

async function shortSessions(port: number, seconds: number, concurrency: number): Promise<number> {
  const until = Date.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', noDelay: true });
      s.once('connect', () => s.write('x'));
      s.on('data', () => {});
      s.once('end', () => {
        done++;
        s.end();
        resolve();
      });
      s.once('error', () => {
        failed++;
        s.destroy();
        resolve();
      });
    });
  const began = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) await one();
    }),
  );
  if (failed > done / 100) process.stderr.write(`  warning: ${failed} failed sessions on port ${port}\n`);
  return done / ((Date.now() - began) / 1000);
}

interface Target {
  name: string;
  bulkPort: number;
  httpPort: number;
  echoPort: number;
  /** Root of the process tree whose CPU time is charged to this target; none for direct. */
  pid: number | undefined;
}

interface Backends {
  sink: number;
  echo: number;
  http: number;
}

function streamConf(b: Backends, ports: number[], extra = ''): string {
  const [bp, hp, ep] = ports;
  return `stream {
    server { listen 127.0.0.1:${bp}; proxy_pass 127.0.0.1:${b.sink};${extra} }
    server { listen 127.0.0.1:${hp}; proxy_pass 127.0.0.1:${b.http};${extra} }
    server { listen 127.0.0.1:${ep}; proxy_pass 127.0.0.1:${b.echo};${extra} }
}
`;
}

async function startTargets(ws: Workspace, b: Backends): Promise<Target[]> {
  const targets: Target[] = [
    { name: 'direct', bulkPort: b.sink, httpPort: b.http, echoPort: b.echo, pid: undefined },
  ];
  const three = () => Promise.all([freePort(), freePort(), freePort()]);
  const add = (name: string, ports: number[], pid: number | undefined) =>
    targets.push({ name, bulkPort: ports[0]!, httpPort: ports[1]!, echoPort: ports[2]!, pid });

  const keepwire = async (name: string, main: string) => {
    const ports = await three();
    const conf = ws.write(
      `${name.replace(/\W+/g, '-')}.conf`,
      `events { worker_connections 4096; }\n${streamConf(b, ports)}`,
    );
    // Session lines (one JSON line per session) go to /dev/null.
    add(name, ports, ws.spawn(process.execPath, [main, 'serve', '-c', conf]).pid);
  };
  await keepwire('keepwire', MAIN);
  const before = process.env.KEEPWIRE_BEFORE;
  if (before) await keepwire('keepwire before', before);
  {
    const ports = await three();
    const pid = startNginx(ws, 'nginx-stream', streamConf(b, ports), {
      preamble: 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n',
    }).pid;
    add('nginx stream', ports, pid);
  }
  {
    const [bp, hp, ep] = await three();
    const conf = ws.write(
      'haproxy.cfg',
      `global
    maxconn 4096
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen bulk
    bind 127.0.0.1:${bp}
    server s 127.0.0.1:${b.sink}
listen web
    bind 127.0.0.1:${hp}
    server s 127.0.0.1:${b.http}
listen echo
    bind 127.0.0.1:${ep}
    server s 127.0.0.1:${b.echo}
`,
    );
    add('HAProxy tcp', [bp!, hp!, ep!], ws.spawn('haproxy', ['-f', conf, '-db']).pid);
  }
  for (const [name, mode] of [
    ['floor: Node net pipe', '--net-floor'],
    ['floor: Node TCP handle pipe', '--handle-floor'],
  ] as const) {
    const ports = await three();
    const pairs = ports.map((p, i) => `${p}=${[b.sink, b.http, b.echo][i]}`);
    add(name, ports, ws.spawn(process.execPath, [SELF, mode, ...pairs]).pid);
  }
  const only = process.env.ONLY?.split(',');
  const chosen = only ? targets.filter((t) => only.some((o) => t.name.includes(o))) : targets;
  for (const t of chosen) {
    await waitListening(t.bulkPort);
    await waitListening(t.httpPort);
    await waitListening(t.echoPort);
  }
  return chosen;
}

interface Round {
  mbps: number;
  cpuUsPerMb: number;
  ka: WrkResult;
  cps: number;
}

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const bulkMb = arg('bulk-mb', 256);
  const seconds = arg('seconds', 3);
  const connections = arg('connections', 64);
  const rounds = arg('rounds', 5);
  const warmup = arg('warmup', 1);
  const shortSeconds = arg('short-seconds', 0);
  const concurrency = arg('concurrency', 32);
  const bulkBytes = bulkMb * 1024 * 1024;
  const ws = new Workspace('keepwire-bench-stream-');
  const runs = new Map<string, Round[]>();
  let targets: Target[] = [];
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  const loadAtStart = load();
  try {
    const backend = ws.spawn(
      process.execPath,
      [SELF, '--backend', String(bulkBytes)],
      ['ignore', 'pipe', 'inherit'],
    );
    const ports = await new Promise<string>((resolve) =>
      backend.stdout!.once('data', (d) => resolve(String(d))),
    );
    const [sink, echo] = ports.trim().split(' ').map(Number) as [number, number];
    const http = await freePort();
    startNginx(ws, 'backend', nginxBackendHttp(http));
    await waitListening(http);
    targets = await startTargets(ws, { sink, echo, http });
    const pinned = cpus().length >= 2;
    if (pinned) {
      pin(process.pid, '0');
      for (const t of targets) if (t.pid !== undefined) pin(t.pid, '1');
    }
    for (const t of targets) await wrk(t.name, t.httpPort, warmup, connections);
    for (let round = 0; round < rounds; round++) {
      for (const t of targets) {
        const cpu0 = t.pid === undefined ? 0 : treeCpuUs(t.pid);
        const mbps = await bulk(t.bulkPort, bulkBytes);
        const cpuUsPerMb = t.pid === undefined ? Number.NaN : (treeCpuUs(t.pid) - cpu0) / bulkMb;
        const ka = await wrk(t.name, t.httpPort, seconds, connections, { cpuOf: t.pid });
        const cps =
          shortSeconds > 0 ? await shortSessions(t.echoPort, shortSeconds, concurrency) : Number.NaN;
        process.stderr.write(
          `round ${round + 1} ${t.name}: bulk ${mbps.toFixed(0)} MB/s ${cpuUsPerMb.toFixed(0)} µs/MB; keep-alive ${ka.rps.toFixed(0)} req/s p99 ${ka.p99Ms} ms ${ka.cpuUsPerReq.toFixed(1)} µs/req${ka.errors ? ` (${ka.errors})` : ''}${shortSeconds > 0 ? `; short ${cps.toFixed(0)} conn/s` : ''}\n`,
        );
        const list = runs.get(t.name) ?? [];
        list.push({ mbps, cpuUsPerMb, ka, cps });
        runs.set(t.name, list);
      }
    }
    const med = new Map(
      targets.map((t) => {
        const r = runs.get(t.name)!;
        return [
          t.name,
          {
            mbps: median(r.map((x) => x.mbps)),
            cpuUsPerMb: median(r.map((x) => x.cpuUsPerMb)),
            rps: median(r.map((x) => x.ka.rps)),
            p99: median(r.map((x) => x.ka.p99Ms)),
            cpuUsPerReq: median(r.map((x) => x.ka.cpuUsPerReq)),
            cps: median(r.map((x) => x.cps)),
          },
        ] as const;
      }),
    );
    const lines = [
      `date: ${new Date().toISOString()}; load average at start ${loadAtStart}, at end ${load()}`,
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, Linux ${version('uname', ['-r'])}, Node ${process.version}; ${version('nginx', ['-v'])}; ${version('haproxy', ['-v'])}`,
      `bulk: ${bulkMb} MiB upload on one connection; keep-alive: wrk -t1 -c${connections} -d${seconds}s, 98-byte responses from nginx (1 worker)${shortSeconds > 0 ? `; short sessions: ${concurrency} parallel clients, 1-byte echo, ${shortSeconds} s` : ''}; ${pinned ? 'each proxy alone on CPU 1, load generators and backends on CPU 0; ' : ''}median of ${rounds} interleaved rounds per column`,
      '',
      `| target | bulk MB/s | proxy CPU µs/MiB | keep-alive req/s | p99 ms | proxy CPU µs/req |${shortSeconds > 0 ? ' short conn/s |' : ''} bulk MB/s of each round | req/s of each round |`,
      `|---|---|---|---|---|---|${shortSeconds > 0 ? '---|' : ''}---|---|`,
      ...targets.map((t) => {
        const m = med.get(t.name)!;
        const r = runs.get(t.name)!;
        return `| ${t.name} | ${m.mbps.toFixed(0)} | ${m.cpuUsPerMb.toFixed(0)} | ${m.rps.toFixed(0)} | ${m.p99.toFixed(2)} | ${m.cpuUsPerReq.toFixed(1)} |${shortSeconds > 0 ? ` ${m.cps.toFixed(0)} |` : ''} ${r.map((x) => x.mbps.toFixed(0)).join(' / ')} | ${r.map((x) => x.ka.rps.toFixed(0)).join(' / ')} |`;
      }),
      '',
    ];
    const ratio = (a: string, b: string) => {
      const x = med.get(a);
      const y = med.get(b);
      if (!x || !y) return;
      const perRound = (f: (r: Round) => number) =>
        runs
          .get(a)!
          .map((r, i) => (f(r) / f(runs.get(b)![i]!)).toFixed(2))
          .join(' / ');
      lines.push(
        `${a} / ${b}: bulk MB/s ${(x.mbps / y.mbps).toFixed(2)}× (rounds ${perRound((r) => r.mbps)}), CPU/MiB ${(x.cpuUsPerMb / y.cpuUsPerMb).toFixed(2)}×; keep-alive req/s ${(x.rps / y.rps).toFixed(2)}× (rounds ${perRound((r) => r.ka.rps)}), p99 ${(x.p99 / y.p99).toFixed(2)}×, CPU/req ${(x.cpuUsPerReq / y.cpuUsPerReq).toFixed(2)}×${shortSeconds > 0 ? `; short conn/s ${(x.cps / y.cps).toFixed(2)}×` : ''}`,
      );
    };
    ratio('keepwire', 'nginx stream');
    ratio('keepwire', 'HAProxy tcp');
    ratio('keepwire', 'floor: Node TCP handle pipe');
    ratio('keepwire', 'floor: Node net pipe');
    ratio('floor: Node TCP handle pipe', 'nginx stream');
    ratio('floor: Node net pipe', 'nginx stream');
    ratio('keepwire', 'keepwire before');
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await ws.stop();
  }
}

if (process.argv[2] === '--backend') runBackend();
else if (process.argv[2] === '--net-floor' || process.argv[2] === '--handle-floor') {
  const listens: number[] = [];
  for (const pair of process.argv.slice(3)) {
    const [from, to] = pair.split('=').map(Number) as [number, number];
    FLOOR_TARGETS[from] = to;
    listens.push(from);
  }
  for (const p of listens) (process.argv[2] === '--net-floor' ? runNetPipeFloor : runHandlePipeFloor)(p);
} else await main();
