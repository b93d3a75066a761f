/**
 * L7 throughput in one run: wrk (keep-alive clients) against direct, keepwire
 * serve, nginx (1 worker, upstream keepalive), HAProxy (1 thread, mode http)
 * and Node `http-proxy` with a keep-alive agent, all on loopback and all in
 * front of the same backend (an nginx worker answering a 98-byte body, so the
 * backend is never the bottleneck).
 *
 *   node dist/bench/http.js [--seconds 5] [--connections 64] [--rounds 3] [--warmup 3] [--reload-seconds 10] [--parts 3]
 *   KEEPWIRE_BEFORE=/old/tree/dist/src/cli/main.js node dist/bench/http.js   (adds an older build)
 *
 * Three parts, each in the same run:
 *   1. one process each: keepwire (access log on, off, and off with its
 *      `metrics` location scraped every second), nginx (1 worker, access log
 *      off and on), HAProxy (1 thread), http-proxy, undici `Pool.stream()`,
 *      and three Node floors (`runFloor`: keepwire's own reads and writes
 *      on net.Socket with no HTTP work, and with the least HTTP work;
 *      `runHandleFloor`: the least HTTP work with the client connection on
 *      its TCP handle, as keepwire runs plain HTTP; `runCorrectFloor`
 *      (bench/correct-floor.ts), floor (d): the HTTP work no correct proxy
 *      can skip, on the same I/O);
 *      req/s, p50, p99 and the
 *      proxy's CPU µs per request (its process tree's user+system time from
 *      /proc over the requests wrk completed), and the CPU ratios to nginx
 *      round by round (adjacent runs share the machine's state: on a VM
 *      whose speed drifts between rounds their median is steadier than a
 *      ratio of medians);
 *   2. two processes: keepwire `worker_processes 2`, nginx 2 workers,
 *      HAProxy `nbthread 2`, wrk with 2 threads;
 *   3. reloads under load: the part-2 proxies reloaded every 500 ms (SIGHUP;
 *      HAProxy in master-worker mode, SIGUSR2) while wrk keeps its keep-alive
 *      connections busy; the errors wrk saw (socket errors + non-2xx) are the
 *      client-visible cost of a reload.
 * `--parts 1` runs part 1 only. `--pairs N` adds to part 1 item 1's ratios
 * measured in N pairs of runs, A B B A (`--pair-seconds`, default 2):
 * keepwire against nginx (logging off, on, and metrics scraped) and floors
 * (c) and (d) against nginx, and this build against KEEPWIRE_BEFORE's when
 * given, each pair's runs seconds apart (`paired`).
 *
 * Not a test: prints req/s, p50, p99 per target and the ratios
 * keepwire/nginx and keepwire/http-proxy. Everything shares the same cores,
 * so absolute numbers drift between runs; ratios within one run hold.
 */
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  arg,
  BODY,
  freePort,
  MAIN,
  nginxBackendHttp,
  nginxProxyHttp,
  pin,
  startNginx,
  version,
  Workspace,
  type WrkResult,
  waitListening,
  wrk,
} from './common.js';

const SELF = fileURLToPath(import.meta.url);
/** Floor (d): the least correct HTTP proxy (bench/correct-floor.ts). */
const CORRECT = 'Node floor: least correct HTTP proxy (d)';

/** Child mode: Node `http-proxy` with a keep-alive agent, as its README recommends. */
async function runHttpProxy(listenPort: number, target: number): Promise<void> {
  const { default: httpProxy } = await import('http-proxy');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${target}`, agent });
  proxy.on('error', (_e, _req, res) => {
    (res as http.ServerResponse).writeHead?.(502);
    res.end();
  });
  http.createServer((req, res) => proxy.web(req, res)).listen(listenPort, '127.0.0.1');
}

/**
 * Child mode: a Node `http` server forwarding through undici's `Pool.stream()`
 * (64 connections), the fastest way undici offers to pipe a response into a
 * writable: what a hand-written Node proxy on the best client library costs.
 */
async function runUndiciProxy(listenPort: number, target: number): Promise<void> {
  const { Pool } = await import('undici');
  const pool = new Pool(`http://127.0.0.1:${target}`, { connections: 64, pipelining: 1 });
  http
    .createServer((req, res) => {
      const headers = { ...req.headers };
      delete headers.connection;
      delete headers['keep-alive'];
      pool
        .stream(
          {
            path: req.url ?? '/',
            method: req.method as 'GET',
            headers,
            body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
          },
          ({ statusCode, headers: answer }) => {
            const out: Record<string, string | string[]> = {};
            for (const [k, v] of Object.entries(answer))
              if (v !== undefined && k !== 'connection' && k !== 'keep-alive') out[k] = v;
            res.writeHead(statusCode, out);
            return res;
          },
        )
        .catch(() => {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        });
    })
    .listen(listenPort, '127.0.0.1');
}

/**
 * Child mode: the floor of a Node proxy on this load — what keepwire's own
 * I/O primitives cost with no HTTP work at all. Each client connection gets
 * one upstream connection of its own (wrk keeps one request in flight per
 * connection, so this is a pool of 64 as keepwire's); every read from one
 * side is sent to the other with keepwire's `readsTo`/`send` (the `onread`
 * reads and direct handle writes of src/proxy/reads.ts and writes.ts): the
 * same syscalls per request as keepwire (2 reads, 2 writes, counted with
 * `strace -c`), no parsing, routing, header rewriting, timers or logging.
 * With `http`, the least a proxy must know on top to reuse connections: where
 * the request head ends (its bytes are forwarded as they came) and where the
 * response ends (its Content-Length) — no validation, no header rewriting,
 * no limits, one request at a time. Either floor is a measuring device, not a
 * proxy anyone should run.
 */
const CRLF2 = Buffer.from('\r\n\r\n');

/**
 * The least HTTP of the floors, per connection: request heads sent up whose
 * responses have not started (wrk: one in flight, its head in one read), and
 * the bytes of the current response still to come (its Content-Length).
 */
class LeastHttp {
  private left = 0;
  private heads = 0;

  requestHead(): void {
    this.heads++;
  }

  /** Counts one read of the response side. */
  response(chunk: Buffer): void {
    if (this.left === 0 && this.heads > 0) {
      this.heads--;
      const end = chunk.indexOf(CRLF2) + 4;
      const head = chunk.toString('latin1', 0, end).toLowerCase();
      const at = head.indexOf('\r\ncontent-length:');
      this.left = end + (at < 0 ? 0 : Number.parseInt(head.slice(at + 17), 10));
    }
    this.left = Math.max(0, this.left - chunk.length);
  }
}

/**
 * Child mode: the least-HTTP floor as keepwire runs plain HTTP today — the
 * client connection on its bare libuv TCP handle through keepwire's own
 * `HandleWire` (src/proxy/http/handle-wire.ts: reads into the shared
 * READ_BUFFER, reused write requests, no net.Socket), accepted with
 * `acceptHandles`; the upstream a `HandleWire` too, connected with
 * `connectWire`, as src/proxy/http/transport.ts does. The request
 * head goes upstream as a latin1 string (keepwire writes a string head), the
 * response back as one copy (keepwire's coalesced write is one Buffer): the
 * same syscalls and the same buffers as keepwire per request, and the same
 * least HTTP as `runFloor`'s `http` mode. Not a proxy anyone should run.
 */
async function runHandleFloor(listenPort: number, target: number): Promise<void> {
  const net = await import('node:net');
  const { acceptHandles, tcpHandles } = await import('../src/kernel/node-internals.js');
  const { connectWire, HandleWire } = await import('../src/proxy/http/handle-wire.js');
  const { READ_BUFFER } = await import('../src/proxy/reads.js');
  if (tcpHandles === null)
    throw new Error('bench/http: this Node has no tcp_wrap handles (keepwire would use net.Socket)');
  const handles = tcpHandles;
  const server = net.createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  server.listen(listenPort, '127.0.0.1', () => {
    const hooked = acceptHandles(server, (handle) => {
      handle.setNoDelay(true);
      const http = new LeastHttp();
      const up = connectWire(
        handles,
        {
          onConnect: (status: number) => {
            if (status < 0 || !up.start()) wire.destroy();
          },
          handleRead(n: number) {
            const chunk = READ_BUFFER.subarray(0, n);
            http.response(chunk);
            wire.send(Buffer.from(chunk));
          },
          onEnd: () => up.destroy(),
          onDrain() {},
          onClose: () => wire.destroy(),
        },
        '127.0.0.1',
        target,
      ).wire;
      const wire = new HandleWire(
        handle,
        {
          handleRead(n: number) {
            const text = READ_BUFFER.toString('latin1', 0, n);
            if (text.indexOf('\r\n\r\n') >= 0) http.requestHead();
            up.send(text);
          },
          onEnd: () => up.destroy(),
          onDrain() {},
          onClose: () => up.destroy(),
        },
        handles,
      );
      return wire.start();
    });
    if (!hooked) throw new Error('bench/http: no onconnection on the listening handle');
  });
}

async function runFloor(listenPort: number, target: number, http: boolean): Promise<void> {
  const net = await import('node:net');
  const { readsTo } = await import('../src/proxy/reads.js');
  const { send } = await import('../src/proxy/writes.js');
  net
    .createServer({ noDelay: true }, (client) => {
      const up = net.connect({ port: target, host: '127.0.0.1', noDelay: true });
      const least = http ? new LeastHttp() : undefined;
      readsTo(client, (chunk: Buffer) => {
        if (least !== undefined && chunk.indexOf(CRLF2) >= 0) least.requestHead();
        send(up, chunk);
      });
      readsTo(up, (chunk: Buffer) => {
        least?.response(chunk);
        send(client, chunk);
      });
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
      client.on('error', () => {});
      up.on('error', () => {});
    })
    .listen(listenPort, '127.0.0.1');
}

interface Target {
  name: string;
  port: number;
  /** Root of the process tree whose CPU time is charged to this target. */
  pid: number;
  /** Runs around each measured run (the metrics scraper). */
  during?: () => () => void;
}

/**
 * Warm-up (`--warmup` s, default 3: V8 compiles the hot path; a keepwire with
 * two workers needs twice the requests, each worker compiles its own), then
 * `rounds` runs per target, interleaved so a slow spell of the machine hits
 * every target.
 */
async function measure(
  targets: Target[],
  rounds: number,
  seconds: number,
  connections: number,
  threads: number,
): Promise<Map<string, WrkResult[]>> {
  const warmup = arg('warmup', 3);
  for (const t of targets) await wrk(t.name, t.port, warmup, connections, { threads });
  const runs = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < rounds; round++)
    for (const t of targets) {
      const stop = t.during?.();
      runs.get(t.name)!.push(await wrk(t.name, t.port, seconds, connections, { threads, cpuOf: t.pid }));
      stop?.();
    }
  return runs;
}

/** `list`'s median and quartiles, as `median (q1–q3)`. */
function quartiles(list: number[]): string {
  const s = [...list].sort((x, y) => x - y);
  const at = (q: number) => s[Math.min(s.length - 1, Math.round(q * (s.length - 1)))]!;
  return `${at(0.5).toFixed(2)} (${at(0.25).toFixed(2)}–${at(0.75).toFixed(2)})`;
}

/**
 * Target `a` against `b` in pairs of runs, A B B A, `seconds` each,
 * `pairs` times; prints the median and quartiles of the pairs' ratios (A's
 * two runs over B's two) of CPU per request, its user-space and kernel
 * parts, req/s and p99. On this VM one unchanged process's CPU per request
 * moves ±30 % within a minute (an nginx read 12.5–19.5 µs in consecutive
 * 3 s runs), and part 1's runs of two targets are tens of seconds apart;
 * runs seconds apart share the machine's state, and the ABBA order cancels
 * a drift that is linear over the four runs.
 */
async function paired(
  a: Target,
  b: Target,
  pairs: number,
  seconds: number,
  connections: number,
): Promise<void> {
  const run = async (t: Target) => {
    const stop = t.during?.();
    const r = await wrk(t.name, t.port, seconds, connections, { cpuOf: t.pid });
    stop?.();
    return r;
  };
  const ratios = {
    cpu: [] as number[],
    user: [] as number[],
    kernel: [] as number[],
    rps: [] as number[],
    p99: [] as number[],
  };
  for (let i = 0; i < pairs; i++) {
    const a1 = await run(a);
    const b1 = await run(b);
    const b2 = await run(b);
    const a2 = await run(a);
    const of = (f: (r: WrkResult) => number) => (f(a1) + f(a2)) / (f(b1) + f(b2));
    ratios.cpu.push(of((r) => r.cpuUsPerReq));
    ratios.user.push(of((r) => r.userUsPerReq));
    ratios.kernel.push(of((r) => r.cpuUsPerReq - r.userUsPerReq));
    ratios.rps.push(of((r) => r.rps));
    ratios.p99.push(of((r) => r.p99Ms));
  }
  console.log(
    `  ${a.name} / ${b.name}: CPU/req ${quartiles(ratios.cpu)}; user ${quartiles(ratios.user)}, kernel ${quartiles(ratios.kernel)}; req/s ${quartiles(ratios.rps)}; p99 ${quartiles(ratios.p99)}`,
  );
}

/** The median run (by req/s) of each target, printed as a table; returns the medians by name. */
function table(runs: Map<string, WrkResult[]>): Map<string, WrkResult> {
  console.log(
    '| target | req/s | p50 ms | p99 ms | CPU µs/req (user + kernel) | req/s of each run | errors |',
  );
  console.log('|---|---|---|---|---|---|---|');
  const medians = new Map<string, WrkResult>();
  for (const [name, list] of runs) {
    const sorted = [...list].sort((a, b) => a.rps - b.rps);
    const r = sorted[Math.floor(sorted.length / 2)]!;
    medians.set(name, r);
    console.log(
      `| ${name} | ${Math.round(r.rps)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.cpuUsPerReq.toFixed(1)} (${r.userUsPerReq.toFixed(1)} + ${(r.cpuUsPerReq - r.userUsPerReq).toFixed(1)}) | ${list.map((x) => Math.round(x.rps)).join(' / ')} | ${r.errors} |`,
    );
  }
  return medians;
}

/** Fetches `url` every second until the returned function is called; counts failed scrapes. */
function scraper(url: string): () => () => void {
  return () => {
    let failures = 0;
    const scrape = () =>
      fetch(url)
        .then((r) => r.text())
        .catch(() => failures++);
    void scrape();
    const timer = setInterval(scrape, 1000);
    return () => {
      clearInterval(timer);
      if (failures) console.log(`metrics scrapes failed: ${failures}`);
    };
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--http-proxy-child') {
    await runHttpProxy(Number(process.argv[3]), Number(process.argv[4]));
    return;
  }
  if (process.argv[2] === '--correct-floor-child') {
    const { runCorrectFloor } = await import('./correct-floor.js');
    await runCorrectFloor(Number(process.argv[3]), Number(process.argv[4]));
    return;
  }
  if (process.argv[2] === '--handle-floor-child') {
    await runHandleFloor(Number(process.argv[3]), Number(process.argv[4]));
    return;
  }
  if (process.argv[2] === '--floor-child') {
    await runFloor(Number(process.argv[3]), Number(process.argv[4]), process.argv[5] === 'http');
    return;
  }
  if (process.argv[2] === '--undici-child') {
    await runUndiciProxy(Number(process.argv[3]), Number(process.argv[4]));
    return;
  }
  const seconds = arg('seconds', 5);
  const connections = arg('connections', 64);
  const rounds = arg('rounds', 3);
  const reloadSeconds = arg('reload-seconds', 10);
  const before = process.env.KEEPWIRE_BEFORE;
  const ws = new Workspace('keepwire-bench-http-');
  const port = () => freePort();
  try {
    const backend = await port();
    // Backend and nginx proxy are separate nginx processes so each has workers of its own.
    const backendPid = startNginx(ws, 'backend', nginxBackendHttp(backend), { workers: 2 }).pid!;
    const nginx = async (name: string, accessLog: string, workers = 1) => {
      const p = await port();
      const pid = startNginx(
        ws,
        name,
        nginxProxyHttp({ port: p, backendPort: backend, pool: 64, accessLog }),
        {
          workers,
        },
      ).pid!;
      return { port: p, pid };
    };
    const keepwire = async (
      name: string,
      opts: { accessLog: string; workers?: number; metrics?: number; main?: string },
    ) => {
      const p = await port();
      const metrics = opts.metrics
        ? `    server { listen 127.0.0.1:${opts.metrics}; location /metrics { metrics; } }\n`
        : '';
      const conf = ws.write(
        `${name}.conf`,
        `${opts.workers ? `worker_processes ${opts.workers};\n` : ''}http {
    access_log ${opts.accessLog};
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${p};
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
    }
${metrics}}
`,
      );
      // Access log lines (keepwire's default: one JSON line per request) go to /dev/null.
      const pid = ws.spawn(process.execPath, [opts.main ?? MAIN, 'serve', '-c', conf]).pid!;
      return { port: p, pid, conf };
    };
    const haproxy = async (name: string, threads: number, masterWorker: boolean) => {
      const p = await port();
      const conf = ws.write(
        `${name}.cfg`,
        `global
    maxconn 4096
    nbthread ${threads}
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
listen web
    bind 127.0.0.1:${p}
    server s 127.0.0.1:${backend}
`,
      );
      const pid = ws.spawn('haproxy', [...(masterWorker ? ['-W'] : []), '-f', conf, '-db']).pid!;
      return { port: p, pid };
    };

    const metricsPort = await port();
    const kw = await keepwire('keepwire', { accessLog: 'on' });
    const kwQuiet = await keepwire('keepwire-quiet', { accessLog: 'off' });
    const kwMetrics = await keepwire('keepwire-metrics', { accessLog: 'off', metrics: metricsPort });
    const kwBefore = before
      ? await keepwire('keepwire-before', { accessLog: 'off', main: before })
      : undefined;
    const ng = await nginx('nginx', 'off');
    // The same proxy logging every request (nginx's default), to /dev/null.
    const ngLog = await nginx('nginx-log', '/dev/null');
    const hp = await haproxy('haproxy', 1, false);
    const hpx = await port();
    const und = await port();
    const undPid = ws.spawn(process.execPath, [SELF, '--undici-child', String(und), String(backend)]).pid!;
    const hpxPid = ws.spawn(process.execPath, [SELF, '--http-proxy-child', String(hpx), String(backend)])
      .pid!;
    const floor = async (mode: 'pipe' | 'http') => {
      const p = await port();
      const pid = ws.spawn(process.execPath, [SELF, '--floor-child', String(p), String(backend), mode]).pid!;
      return { port: p, pid };
    };
    const floorPipe = await floor('pipe');
    const floorHttp = await floor('http');
    const child = async (mode: string) => {
      const p = await port();
      const pid = ws.spawn(process.execPath, [SELF, mode, String(p), String(backend)]).pid!;
      return { port: p, pid };
    };
    const floorHandles = await child('--handle-floor-child');
    const floorCorrect = await child('--correct-floor-child');
    const kw2 = await keepwire('keepwire-2', { accessLog: 'off', workers: 2 });
    const ng2 = await nginx('nginx-2', 'off', 2);
    const hp2 = await haproxy('haproxy-2', 2, true);
    const all = [
      backend,
      kw,
      kwQuiet,
      kwMetrics,
      kwBefore,
      ng,
      ngLog,
      hp,
      hpx,
      und,
      floorPipe,
      floorHttp,
      floorHandles,
      floorCorrect,
      kw2,
      ng2,
      hp2,
      metricsPort,
    ];
    for (const p of all) if (p !== undefined) await waitListening(typeof p === 'number' ? p : p.port);

    console.log(
      `${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Linux ${version('uname', ['-r'])}, node ${process.version}, ${version('nginx', ['-v'])}, ${version('haproxy', ['-v'])}; load average at start ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    console.log(
      `wrk -c${connections} -d${seconds}s, ${BODY.length + 1}-byte responses; median of ${rounds} interleaved runs per target; CPU = the proxy's process tree, user+system`,
    );
    // Part 1 pins: each proxy alone on CPU 1; wrk (started by this process) and the backend on CPU 0.
    const pinned = cpus().length >= 2;
    console.log(
      pinned
        ? '\n1. one process each (wrk -t1); the proxy alone on CPU 1, wrk and the backend on CPU 0\n'
        : '\n1. one process each (wrk -t1)\n',
    );
    const single: Target[] = [
      { name: 'direct (nginx backend, 2 workers)', port: backend, pid: backendPid },
      { name: 'keepwire', ...kw },
      { name: 'keepwire access_log off', ...kwQuiet },
      {
        name: 'keepwire access_log off, metrics scraped every 1 s',
        ...kwMetrics,
        during: scraper(`http://127.0.0.1:${metricsPort}/metrics`),
      },
      ...(kwBefore ? [{ name: `keepwire access_log off, before (${before})`, ...kwBefore }] : []),
      { name: 'nginx', ...ng },
      { name: 'nginx access_log on', ...ngLog },
      { name: 'HAProxy', ...hp },
      { name: 'http-proxy', port: hpx, pid: hpxPid },
      { name: 'undici Pool.stream()', port: und, pid: undPid },
      { name: 'Node floor: byte pipe', ...floorPipe },
      { name: 'Node floor: least HTTP', ...floorHttp },
      { name: 'Node floor: least HTTP, client on TCP handles', ...floorHandles },
      { name: CORRECT, ...floorCorrect },
    ];
    if (pinned) {
      pin(process.pid, '0');
      pin(backendPid, '0');
      for (const t of single) if (t.pid !== backendPid) pin(t.pid, '1');
    }
    const runs = await measure(single, rounds, seconds, connections, 1);
    const by = table(runs);
    const get = (n: string) => by.get(n)!;
    const ratio = (a: string, b: string) => (get(a).rps / get(b).rps).toFixed(2);
    const p99 = (a: string, b: string) => (get(a).p99Ms / get(b).p99Ms).toFixed(2);
    const cpu = (a: string, b: string) => (get(a).cpuUsPerReq / get(b).cpuUsPerReq).toFixed(2);
    const perRound = (a: string, b: string) =>
      runs
        .get(a)!
        .map((r, i) => (r.rps / runs.get(b)![i]!.rps).toFixed(2))
        .join(' / ');
    console.log(
      `\nkeepwire/nginx, neither logging: req/s ${ratio('keepwire access_log off', 'nginx')} (rounds ${perRound('keepwire access_log off', 'nginx')}), p99 ${p99('keepwire access_log off', 'nginx')}, CPU/req ${cpu('keepwire access_log off', 'nginx')}`,
    );
    console.log(
      `keepwire/nginx, both logging: req/s ${ratio('keepwire', 'nginx access_log on')} (rounds ${perRound('keepwire', 'nginx access_log on')}), p99 ${p99('keepwire', 'nginx access_log on')}, CPU/req ${cpu('keepwire', 'nginx access_log on')}`,
    );
    console.log(
      `metrics scraped / not: req/s ${ratio('keepwire access_log off, metrics scraped every 1 s', 'keepwire access_log off')} (rounds ${perRound('keepwire access_log off, metrics scraped every 1 s', 'keepwire access_log off')}), CPU/req ${cpu('keepwire access_log off, metrics scraped every 1 s', 'keepwire access_log off')}`,
    );
    if (kwBefore) {
      const b = `keepwire access_log off, before (${before})`;
      console.log(
        `now / before: req/s ${ratio('keepwire access_log off', b)} (rounds ${perRound('keepwire access_log off', b)}), p99 ${p99('keepwire access_log off', b)}, CPU/req ${cpu('keepwire access_log off', b)}`,
      );
    }
    console.log(
      `Node floors/nginx: byte pipe req/s ${ratio('Node floor: byte pipe', 'nginx')}, CPU/req ${cpu('Node floor: byte pipe', 'nginx')}; least HTTP req/s ${ratio('Node floor: least HTTP', 'nginx')}, CPU/req ${cpu('Node floor: least HTTP', 'nginx')}; keepwire/least-HTTP floor CPU/req ${cpu('keepwire access_log off', 'Node floor: least HTTP')}`,
    );
    console.log(
      `keepwire/HAProxy req/s ${ratio('keepwire access_log off', 'HAProxy')}; keepwire/http-proxy ${ratio('keepwire', 'http-proxy')}, keepwire/undici ${ratio('keepwire', 'undici Pool.stream()')} (neither Node proxy logs)`,
    );
    // CPU per request against nginx's in the same round, then the median of those ratios.
    const cpuRounds = (a: string, b: string, part: (r: WrkResult) => number = (r) => r.cpuUsPerReq) => {
      const list = runs.get(a)!.map((r, i) => part(r) / part(runs.get(b)![i]!));
      const sorted = [...list].sort((x, y) => x - y);
      return `${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)} (rounds ${list.map((x) => x.toFixed(2)).join(' / ')})`;
    };
    console.log('\nCPU per request / nginx, round by round (median of the rounds):');
    for (const [a, b] of [
      ['keepwire access_log off', 'nginx'],
      ['keepwire', 'nginx access_log on'],
      ['HAProxy', 'nginx'],
      ['Node floor: least HTTP', 'nginx'],
      ['Node floor: least HTTP, client on TCP handles', 'nginx'],
      [CORRECT, 'nginx'],
      ['keepwire access_log off', 'Node floor: least HTTP, client on TCP handles'],
      ['keepwire access_log off', CORRECT],
    ])
      console.log(`  ${a} / ${b}: ${cpuRounds(a!, b!)}`);
    // The same syscalls per request cost every target about the same kernel time: the gap is user space.
    console.log('the same, user-space and kernel time apart:');
    for (const a of ['keepwire access_log off', 'Node floor: least HTTP, client on TCP handles', CORRECT])
      console.log(
        `  ${a} / nginx: user ${cpuRounds(a, 'nginx', (r) => r.userUsPerReq)}; kernel ${cpuRounds(a, 'nginx', (r) => r.cpuUsPerReq - r.userUsPerReq)}`,
      );
    const pairs = arg('pairs', 0);
    if (pairs > 0) {
      const pairSeconds = arg('pair-seconds', 2);
      const byName = (n: string) => single.find((t) => t.name === n)!;
      console.log(
        `\npairs of runs, A B B A, ${pairSeconds} s each, ${pairs} times: median of the pairs' ratios (quartiles)`,
      );
      for (const [x, y] of [
        ['keepwire access_log off', 'nginx'],
        ['keepwire', 'nginx access_log on'],
        ['keepwire access_log off, metrics scraped every 1 s', 'nginx'],
        ['Node floor: least HTTP, client on TCP handles', 'nginx'],
        [CORRECT, 'nginx'],
        // KEEPWIRE_BEFORE: this build against the other, paired as the rest.
        ...(kwBefore ? [['keepwire access_log off', `keepwire access_log off, before (${before})`]] : []),
      ])
        await paired(byName(x!), byName(y!), pairs, pairSeconds, connections);
    }
    if (arg('parts', 3) < 2) return;

    // Parts 2 and 3: every CPU for everyone again.
    if (pinned) {
      pin(process.pid, '0,1');
      pin(backendPid, '0,1');
    }
    console.log('\n2. two processes/threads each (wrk -t2), nothing pinned\n');
    const two: Target[] = [
      { name: 'keepwire worker_processes 2', ...kw2 },
      { name: 'nginx worker_processes 2', ...ng2 },
      { name: 'HAProxy nbthread 2', ...hp2 },
    ];
    const runs2 = await measure(two, rounds, seconds, connections, 2);
    const by2 = table(runs2);
    const k2 = by2.get('keepwire worker_processes 2')!;
    const n2 = by2.get('nginx worker_processes 2')!;
    console.log(
      `\nkeepwire/nginx with 2 workers: req/s ${(k2.rps / n2.rps).toFixed(2)}, p99 ${(k2.p99Ms / n2.p99Ms).toFixed(2)}, CPU/req ${(k2.cpuUsPerReq / n2.cpuUsPerReq).toFixed(2)}`,
    );

    console.log(`\n3. reloads every 500 ms under load (wrk -t2 -c${connections} -d${reloadSeconds}s)\n`);
    console.log('| target | reloads | requests | req/s | client-visible errors |');
    console.log('|---|---|---|---|---|');
    for (const [name, pid, signal] of [
      ['keepwire worker_processes 2 (SIGHUP)', kw2.pid, 'SIGHUP'],
      ['nginx worker_processes 2 (SIGHUP)', ng2.pid, 'SIGHUP'],
      ['HAProxy -W nbthread 2 (SIGUSR2)', hp2.pid, 'SIGUSR2'],
    ] as const) {
      const p = name.startsWith('keepwire') ? kw2.port : name.startsWith('nginx') ? ng2.port : hp2.port;
      let reloads = 0;
      const timer = setInterval(() => {
        process.kill(pid, signal);
        reloads++;
      }, 500);
      const r = await wrk(name, p, reloadSeconds, connections, { threads: 2 });
      clearInterval(timer);
      console.log(
        `| ${name} | ${reloads} | ${r.requests} | ${Math.round(r.rps)} | ${r.errorCount}${r.errors ? ` (${r.errors})` : ''} |`,
      );
      // Let the last generation settle before the next proxy is loaded.
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  } finally {
    await ws.stop();
  }
}

await main();
