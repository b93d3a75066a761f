/**
 * Memory per idle keep-alive client connection: keepwire serve (HTTP) against
 * nginx (1 worker) and HAProxy (1 thread), all proxying to the same nginx backend with an upstream
 * keep-alive pool, as in bench/http.ts.
 *
 *   node dist/bench/http-idle-memory.js [--connections 10000] [--idle-seconds 15]
 *
 * For each proxy in turn: warm up (a few hundred requests on 64 connections,
 * then closed), measure, open N client connections and send one request on
 * each (at most 64 in flight, so the upstream pool is used as under load and
 * not grown to N), check every answer is a 200, leave them idle, measure
 * again, close them. Measured: VmRSS from /proc/PID/status (keepwire's
 * process; nginx's worker), for keepwire also `process.memoryUsage()` after a
 * full GC (bench/memory-probe.js preloaded, answering over IPC), and the
 * upstream pool: established connections from the proxy to the backend.
 * nginx allocates all worker_connections slots at start, so their cost is in
 * its RSS before the first connection: a second, idle nginx with 1024 slots
 * gives the cost per slot, added to nginx's per-connection figure.
 * A bare Node `net.Server` that answers once and keeps each socket is measured
 * too, for scale: what Node's own socket costs.
 * Not a test; N is bounded by RLIMIT_NOFILE (this process holds N sockets,
 * each proxy N plus its pool; both proxies get worker_connections N + 1024).
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  arg,
  BODY,
  freePort,
  MAIN,
  nginxBackendHttp,
  nginxProxyHttp,
  startNginx,
  version,
  Workspace,
  waitListening,
} from './common.js';

const PROBE = fileURLToPath(new URL('./memory-probe.js', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const IN_FLIGHT = 64;
const POOL = 64;
const DEADLINE_MS = 10 * 60_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function status(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

function openFilesLimit(pid: number | 'self'): number {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[3]);
}

function openFilesHardLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[4]);
}

/** The nginx worker: the master's only child. */
async function nginxWorker(master: ChildProcess): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const kids = readFileSync(`/proc/${master.pid}/task/${master.pid}/children`, 'utf8').trim();
    if (kids) return Number(kids.split(' ')[0]);
    await sleep(50);
  }
  throw new Error('nginx started no worker');
}

/** Established TCP connections of `pid` whose peer port is `port` (its upstream pool). */
function connectionsTo(pid: number, port: number): number {
  // /proc/PID/net/tcp is the namespace's table; own sockets are matched by inode against /proc/PID/fd.
  const inodes = new Set<string>();
  for (const table of ['tcp', 'tcp6'])
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '01') continue;
      if (Number.parseInt(f[2]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
    }
  let n = 0;
  for (const inode of socketInodes(pid)) if (inodes.has(inode)) n++;
  return n;
}

function socketInodes(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Opens a connection, sends one GET, reads the 200 with its body; resolves with the open socket. */
function oneRequest(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let buf = '';
    const fail = (e: Error) => {
      s.destroy();
      reject(e);
    };
    s.setEncoding('latin1');
    s.once('error', fail);
    s.once('connect', () => s.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n'));
    const onData = (d: string) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, end))?.[1] ?? Number.NaN);
      if (buf.length < end + 4 + len) return;
      s.off('data', onData);
      s.off('error', fail);
      if (!buf.startsWith('HTTP/1.1 200 ')) return fail(new Error(`answer: ${buf.split('\r\n')[0]}`));
      if (/\r\nconnection:\s*close/i.test(buf.slice(0, end))) return fail(new Error('server closes'));
      s.on('error', () => {});
      s.on('end', () => {
        closedEarly++;
      });
      resolve(s);
    };
    s.on('data', onData);
  });
}

let closedEarly = 0;

/** `n` connections, one request each, at most IN_FLIGHT at once. */
async function openIdle(port: number, n: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(IN_FLIGHT, n) }, async () => {
      while (next < n) {
        next++;
        sockets.push(await oneRequest(port));
      }
    }),
  );
  return sockets;
}

async function closeAll(sockets: Socket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.destroyed) return resolve();
          s.once('close', () => resolve());
          s.destroy();
        }),
    ),
  );
}

interface Memory {
  rss: number;
  heapUsed?: number;
  heapTotal?: number;
  external?: number;
  arrayBuffers?: number;
  /** keepwire's idle connections held as their TCP handle (parked.ts), where the build has them. */
  parked?: number;
  /** keepwire's memory reclaims so far (parked.ts) and how long the last one took, where the build has them. */
  reclaims?: number;
  reclaimMs?: number;
  /** RSS right after the probe's first full GC (the reading is 2 s later): bench/memory-probe.ts. */
  rssAtGc?: number;
  /** RSS read before the probe's GC: what the idle process holds on its own, garbage included. */
  rssNoGc?: number;
  /** Where RSS is (bench/memory-probe.ts `breakdown`): before the GC, right after it, 2 s after it. */
  breakdown?: Record<'noGc' | 'atGc' | 'after', Breakdown>;
}

/** Nested byte counts from the probe (V8 heap spaces, mallinfo2, smaps by kind of mapping). */
type Breakdown = { [key: string]: number | Breakdown };

function flatten(
  b: Breakdown | undefined,
  prefix = '',
  out = new Map<string, number>(),
): Map<string, number> {
  for (const [k, v] of Object.entries(b ?? {}))
    if (typeof v === 'number') out.set(`${prefix}${k}`, v);
    else flatten(v, `${prefix}${k}.`, out);
  return out;
}

/** Per connection, KiB: each breakdown figure after the burst minus before it, at the probe's three moments. */
function printBreakdown(r: Row): void {
  const moments = ['noGc', 'atGc', 'after'] as const;
  const flat = moments.map(
    (m) => [flatten(r.before.breakdown?.[m]), flatten(r.after.breakdown?.[m])] as const,
  );
  console.log('');
  console.log(`${r.name}: where RSS went, KiB per connection (after the burst minus before it)`);
  console.log('| figure | before any forced GC | right after the GC | 2 s after the GC |');
  console.log('|---|---|---|---|');
  for (const key of flat[2]![1].keys()) {
    const cells = flat.map(([a, b]) => ((b.get(key)! - (a.get(key) ?? 0)) / r.n / 1024).toFixed(2));
    if (cells.every((c) => Math.abs(Number(c)) < 0.02)) continue;
    console.log(`| ${key} | ${cells.join(' | ')} |`);
  }
}

/** A reading, with the RSS before any GC the probe forces. */
async function reading(t: Target): Promise<Memory> {
  const rssNoGc = status(t.pid, 'VmRSS');
  return { ...(await t.memory()), rssNoGc };
}

interface Target {
  key: 'keepwire' | 'nginx' | 'haproxy' | 'net' | 'base';
  name: string;
  port: number;
  /** The process holding the connections. */
  pid: number;
  memory(): Promise<Memory>;
}

interface Row {
  key?: Target['key'];
  name: string;
  n: number;
  before: Memory;
  after: Memory;
  pool: number;
  held: number;
}

async function measure(t: Target, n: number, idleMs: number, backendPort: number): Promise<Row> {
  // Warm-up: JIT, allocator arenas, the upstream pool.
  for (let round = 0; round < 4; round++) await closeAll(await openIdle(t.port, IN_FLIGHT));
  await sleep(idleMs);
  const before = await reading(t);
  const began = Date.now();
  const sockets = await openIdle(t.port, n);
  process.stderr.write(`  ${t.name}: ${n} connections, one request each, in ${Date.now() - began} ms\n`);
  await sleep(idleMs);
  const after = await reading(t);
  const pool = connectionsTo(t.pid, backendPort);
  const held = sockets.filter((s) => !s.destroyed).length;
  await closeAll(sockets);
  return { name: t.name, n, before, after, pool, held };
}

/** Memory of a process started with bench/memory-probe.js: a full GC, then `process.memoryUsage()` and VmRSS. */
function probe(child: ChildProcess): Promise<Memory> {
  return new Promise<Memory>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`process ${child.pid} did not answer the memory probe`)),
      10_000,
    );
    child.once('message', (m) => {
      clearTimeout(t);
      // Read after the GC the probe just ran.
      resolve({ ...(m as Omit<Memory, 'rss'>), rss: status(child.pid!, 'VmRSS') });
    });
    child.send('memory');
  });
}

const kib = (b: number) => (b / 1024).toFixed(0);
const perConn = (a: number | undefined, b: number | undefined, n: number) =>
  a === undefined || b === undefined ? '—' : ((b - a) / n / 1024).toFixed(2);

/** Child mode: a bare Node net.Server answering one 98-byte response per connection and keeping the socket. */
function bareNetServer(port: number): void {
  const answer = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length + 1}\r\n\r\n${BODY}\n`);
  createServer((s) => {
    s.once('data', () => s.write(answer));
    s.on('error', () => {});
  }).listen(port, '127.0.0.1');
}

async function main(): Promise<void> {
  if (process.argv[2] === '--bare-net-server') {
    bareNetServer(Number(process.argv[3]));
    return;
  }
  const n = arg('connections', 10_000);
  // 15 s: V8 returns the heap pages a burst of new connections left committed
  // but unused some seconds after allocation stops (its memory reducer); a
  // reading 3 s after the burst still counts them (about 1 KiB per connection).
  const idleMs = arg('idle-seconds', 15) * 1000;
  const limit = openFilesLimit('self');
  if (!(n >= 1) || n + 256 > limit) {
    // Node cannot raise RLIMIT_NOFILE itself; the shell can up to the hard limit, and only
    // CAP_SYS_RESOURCE beyond it (on the 2026-11 bench machine soft = hard = 20,000: 50,000 cannot be run there).
    const hard = openFilesHardLimit();
    process.stderr.write(
      `--connections ${n}: this process holds N sockets and its open-files limit is ${limit} (hard limit ${hard}); use at most ${limit - 256}${hard > limit ? `, or raise it first: ulimit -n ${hard}` : ', and raising the hard limit needs CAP_SYS_RESOURCE'}\n`,
    );
    process.exit(2);
  }
  const ws = new Workspace('keepwire-bench-idle-');
  const deadline = setTimeout(() => {
    process.stderr.write(`gave up after ${DEADLINE_MS / 1000} s\n`);
    void ws.stop().finally(() => process.exit(1));
  }, DEADLINE_MS);
  // `--base DIR`: a second keepwire build (DIR/dist, e.g. a worktree of main) measured in the same run.
  const baseAt = process.argv.indexOf('--base');
  const baseDir = baseAt >= 0 ? process.argv[baseAt + 1] : undefined;
  const [backendPort, kwPort, ngPort, smallPort, hpPort, netPort, basePort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const workerConnections = n + 1024;
  // `--node-flags '--a --b'`: Node/V8 flags for keepwire's process (not the base build's), for experiments.
  const flagsAt = process.argv.indexOf('--node-flags');
  const nodeFlags = flagsAt >= 0 ? process.argv[flagsAt + 1]!.split(/\s+/).filter(Boolean) : [];
  try {
    startNginx(ws, 'backend', nginxBackendHttp(backendPort, '600s'));
    const nginxProxy = (port: number) =>
      nginxProxyHttp({ port, backendPort, pool: POOL, accessLog: 'off', keepaliveTimeout: '600s' });
    const ngMaster = startNginx(ws, 'nginx', nginxProxy(ngPort), { workerConnections });
    // The same nginx with 1024 connection slots: nginx allocates every slot of worker_connections at
    // start, so part of its per-connection cost is already in its RSS before any connection exists.
    const smallMaster = startNginx(ws, 'nginx-small', nginxProxy(smallPort), { workerConnections: 1024 });
    const kwConfFor = (port: number) => `events { worker_connections ${workerConnections}; }
http {
    upstream app { server 127.0.0.1:${backendPort}; keepalive ${POOL}; keepalive_timeout 600s; }
    server {
        listen 127.0.0.1:${port};
        keepalive_requests 100000;
        keepalive_timeout 600s;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
    }
}
`;
    const kwConf = ws.write('keepwire.conf', kwConfFor(kwPort));
    // Access log lines are part of keepwire's work; they go to /dev/null here.
    const kw = ws.spawn(
      process.execPath,
      ['--expose-gc', ...nodeFlags, '--import', PROBE, MAIN, 'serve', '-c', kwConf],
      // With --node-flags (e.g. --trace-gc, which prints on stdout) keepwire's stdout goes to the bench's stderr.
      ['ignore', nodeFlags.length > 0 ? 2 : 'ignore', 'inherit', 'ipc'],
    );
    // HAProxy, one thread, the same pool and timeouts (its connection memory comes from pools that grow on demand).
    // It reserves two descriptors per maxconn (client and server side) and refuses to start when the
    // open-files limit is below that: with the usual 20,000, N up to about 9,900.
    const hpConf = ws.write(
      'haproxy.cfg',
      `global
    maxconn ${n + 64}
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
    http-reuse always
listen web
    bind 127.0.0.1:${hpPort}
    server s 127.0.0.1:${backendPort} pool-max-conn ${POOL}
`,
    );
    const hp = ws.spawn('haproxy', ['-f', hpConf, '-db']);
    // For scale: a bare Node net.Server that answers each connection's request once and keeps the socket.
    // With the same memory probe as keepwire: both are read after a full GC (before 2026-11-30 the bare
    // server was read without one, and its figure counted garbage: about 1 KiB per connection more).
    const bare = ws.spawn(
      process.execPath,
      ['--expose-gc', '--import', PROBE, SELF, '--bare-net-server', String(netPort)],
      ['ignore', 'ignore', 'inherit', 'ipc'],
    );
    const base =
      baseDir === undefined
        ? undefined
        : ws.spawn(
            process.execPath,
            [
              '--expose-gc',
              '--import',
              PROBE,
              `${baseDir}/dist/src/cli/main.js`,
              'serve',
              '-c',
              ws.write('keepwire-base.conf', kwConfFor(basePort!)),
            ],
            ['ignore', 'ignore', 'inherit', 'ipc'],
          );
    for (const p of [backendPort, kwPort, ngPort, smallPort, hpPort, netPort]) await waitListening(p);
    if (base !== undefined) await waitListening(basePort!);
    const ngWorker = await nginxWorker(ngMaster);
    const slots = {
      big: status(ngWorker, 'VmRSS'),
      small: status(await nginxWorker(smallMaster), 'VmRSS'),
    };
    const slotBytes = (slots.big - slots.small) / (workerConnections - 1024);
    for (const [name, pid] of [
      ['keepwire', kw.pid!],
      ['nginx worker', ngWorker],
    ] as const) {
      const l = openFilesLimit(pid);
      if (n + POOL + 64 > l) throw new Error(`${name}'s open-files limit ${l} is below ${n} connections`);
    }

    const targets: Target[] = [
      {
        key: 'keepwire',
        name: 'keepwire',
        port: kwPort,
        pid: kw.pid!,
        memory: () => probe(kw),
      },
      {
        key: 'nginx',
        name: 'nginx',
        port: ngPort,
        pid: ngWorker,
        memory: async () => ({ rss: status(ngWorker, 'VmRSS') }),
      },
      {
        key: 'haproxy',
        name: 'HAProxy',
        port: hpPort,
        pid: hp.pid!,
        memory: async () => ({ rss: status(hp.pid!, 'VmRSS') }),
      },
      {
        key: 'net',
        name: 'Node net.Server (bare, for scale)',
        port: netPort,
        pid: bare.pid!,
        memory: () => probe(bare),
      },
    ];
    if (base !== undefined)
      targets.push({
        key: 'base',
        name: `keepwire (base: ${baseDir})`,
        port: basePort!,
        pid: base.pid!,
        memory: () => probe(base),
      });
    // `--only keepwire,base,net`: measure only these (keys: keepwire, nginx, haproxy, net, base).
    const onlyAt = process.argv.indexOf('--only');
    const only = onlyAt >= 0 ? new Set(process.argv[onlyAt + 1]!.split(',')) : undefined;
    const rows: Row[] = [];
    for (const t of targets)
      if (only === undefined || only.has(t.key))
        rows.push({ ...(await measure(t, n, idleMs, backendPort)), key: t.key });
    const row = (key: Target['key']) => rows.find((r) => r.key === key);

    console.log(`date: ${new Date().toISOString()}`);
    console.log(
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, Linux ${version('uname', ['-r'])}, Node ${process.version}, ${version('nginx', ['-v'])}`,
    );
    console.log(
      `${n} keep-alive client connections per proxy, one 98-byte GET each (≤ ${IN_FLIGHT} in flight), idle ${idleMs / 1000} s before each reading; upstream keepalive ${POOL}`,
    );
    console.log('');
    console.log(
      '| proxy | RSS before KiB | RSS after KiB | RSS per connection KiB | upstream pool | connections held |',
    );
    console.log('|---|---|---|---|---|---|');
    for (const r of rows)
      console.log(
        `| ${r.name} | ${kib(r.before.rss)} | ${kib(r.after.rss)} | ${perConn(r.before.rss, r.after.rss, r.n)} | ${r.pool} | ${r.held} |`,
      );
    const k = row('keepwire');
    const g = row('nginx');
    const h = row('haproxy');
    const b = row('net');
    console.log('');
    if (k !== undefined) {
      const d = (f: (m: Memory) => number) => perConn(f(k.before), f(k.after), n);
      console.log(
        `keepwire per connection after a full GC, KiB: heapUsed ${d((m) => m.heapUsed!)}, heapTotal ${d((m) => m.heapTotal!)}, external ${d((m) => m.external!)} (arrayBuffers ${d((m) => m.arrayBuffers!)}); RSS not in heapUsed or external (native handles, malloc, V8 heap pages not in use) ${d((m) => m.rss - m.heapUsed! - m.external!)}`,
      );
    }
    if (b !== undefined) {
      const db = (f: (m: Memory) => number) => perConn(f(b.before), f(b.after), n);
      console.log(
        `bare net.Server per connection after a full GC, KiB: heapUsed ${db((m) => m.heapUsed!)}; RSS not in heapUsed or external ${db((m) => m.rss - m.heapUsed! - m.external!)}`,
      );
    }
    if (g !== undefined) {
      const ngPer = (g.after.rss - g.before.rss) / n + slotBytes;
      console.log(
        `nginx allocates its worker_connections slots at start: idle worker RSS ${kib(slots.big)} KiB with ${workerConnections} slots, ${kib(slots.small)} KiB with 1024 → ${(slotBytes / 1024).toFixed(2)} KiB per slot; nginx per idle connection including its slot: ${(ngPer / 1024).toFixed(2)} KiB`,
      );
      if (k !== undefined && h !== undefined)
        console.log(
          `keepwire − nginx per idle connection: ${((k.after.rss - k.before.rss) / n / 1024 - ngPer / 1024).toFixed(2)} KiB; keepwire/HAProxy ${((k.after.rss - k.before.rss) / (h.after.rss - h.before.rss)).toFixed(2)}× (target: keepwire ≤ 3 KiB per idle keep-alive connection)`,
        );
    }
    for (const r of rows.filter((x) => x.key === 'keepwire' || x.key === 'base')) {
      const dr = (f: (m: Memory) => number) => perConn(f(r.before), f(r.after), n);
      console.log(
        `${r.name}: RSS ${dr((m) => m.rss)} KiB per connection (read right after the GC: ${dr((m) => m.rssAtGc!)}; before any forced GC: ${dr((m) => m.rssNoGc!)}), heapUsed ${dr((m) => m.heapUsed!)}, heapTotal ${dr((m) => m.heapTotal!)}, RSS not in heapUsed or external ${dr((m) => m.rss - m.heapUsed! - m.external!)}; parked at the reading: ${r.after.parked ?? 'n/a'}; memory reclaims ${r.after.reclaims ?? 'n/a'}${r.after.reclaimMs === undefined ? '' : ` (the last took ${r.after.reclaimMs.toFixed(0)} ms)`}`,
      );
    }
    if (process.argv.includes('--breakdown'))
      for (const r of rows) if (r.after.breakdown !== undefined) printBreakdown(r);
    if (closedEarly > 0) console.log(`warning: ${closedEarly} connections were closed by a proxy while idle`);
  } finally {
    clearTimeout(deadline);
    await ws.stop();
  }
}

await main();
