/**
 * User-space instructions per proxied keep-alive request, counted by
 * valgrind (cachegrind, no cache simulation) instead of timed: on this
 * shared 2-vCPU VM one build's CPU time per request moves ±20 % between
 * rounds, an instruction count moves a few per cent, so a change of 5 % in
 * keepwire's request path can be told apart (issue #20 item 1).
 *
 *   node dist/bench/instructions.js [--requests 8000] [--warmup 5000]
 *   KEEPWIRE_BEFORE=/path/to/other/dist/src/cli/main.js   adds another build
 *   --sessions stream|http   short sessions instead: one TCP connection per
 *                     request (`Connection: close`), the targets of
 *                     bench/short.ts (nginx stream or HTTP, its TCP-handle
 *                     floors, keepwire with `access_log off`); counts per
 *                     session (#20 item 3)
 *   --top N           lists the N largest named functions per target (12)
 *   --only keepwire   counts only the targets whose name contains the word
 *                     (an A/B of two builds without the peers; ratios to
 *                     nginx need nginx in the run)
 *
 * Per target: the proxy runs under valgrind twice, each time fed `warmup`
 * requests (V8 compiles the hot path) and then 1000 or 1000 + `requests`
 * keep-alive GETs (16 connections, one request in flight on each) to an
 * nginx backend answering 98 bytes; the difference of the two counts over
 * `requests` is what one request costs, start-up and warm-up cancelled.
 * `steady` leaves out garbage collection and V8's optimising compiler
 * (their share depends on when a major GC or a re-optimisation falls, the
 * main source of run-to-run spread); the per-function split comes from
 * `cg_annotate` (V8 builtins, Node and libc by name; JIT-compiled
 * JavaScript as one line).
 *
 * Targets: nginx as the proxy (1 worker, `master_process off` so valgrind
 * counts the worker), the four Node floors of bench/http.ts (`runFloor`: a
 * byte pipe, and the least HTTP that reuses connections; `runHandleFloor`:
 * that least HTTP with the client on its TCP handle; floor (d),
 * bench/correct-floor.ts: the least correct HTTP proxy), keepwire, and
 * KEEPWIRE_BEFORE. Kernel work is not counted (it is the same syscalls for
 * every Node target: bench/http.ts, strace). Not a test. Needs valgrind
 * (`apt-get install valgrind`). Node runs with `--single-threaded` (no
 * background compile or GC threads) and fixed hash and random seeds, for a
 * steadier count.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  arg,
  freePort,
  keepAliveGets,
  MAIN,
  nginxBackendHttp,
  nginxProxyHttp,
  startNginx,
  version,
  Workspace,
  waitListening,
} from './common.js';

const HTTP_BENCH = fileURLToPath(new URL('./http.js', import.meta.url));
const SHORT_BENCH = fileURLToPath(new URL('./short.js', import.meta.url));
const BASE = 1000;

interface Target {
  name: string;
  /** The command under valgrind, given the port to listen on and the backend's. */
  command(port: number, backend: number, ws: Workspace): string[];
  /** Driven by short sessions (one connection per request). */
  sessions?: boolean;
}

/**
 * `n` short sessions, `conns` at a time: each connects, sends one GET with
 * `Connection: close` and reads until the proxy closes (then closes too:
 * the server's close comes first, as with wrk); resolves when all
 * have ended with a 200.
 */
function sessions(port: number, n: number, conns: number): Promise<void> {
  const req = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`, 'latin1');
  let started = 0;
  let done = 0;
  return new Promise((resolve, reject) => {
    const one = () => {
      if (started >= n) return;
      started++;
      const s = connect(port, '127.0.0.1', () => s.write(req));
      let answer = '';
      s.on('data', (d: Buffer) => {
        answer += d.toString('latin1');
      });
      s.on('error', reject);
      s.on('close', () => {
        if (!answer.startsWith('HTTP/1.1 200 '))
          reject(new Error(`unexpected answer: ${answer.slice(0, 40)}`));
        else if (++done === n) resolve();
        else one();
      });
    };
    for (let c = 0; c < conns; c++) one();
  });
}

interface Count {
  total: number;
  file: string;
}

async function countOnce(
  ws: Workspace,
  t: Target,
  backend: number,
  n: number,
  warmup: number,
): Promise<Count> {
  const port = await freePort();
  const tag = `${t.name.replace(/\W+/g, '_')}-${n}`;
  const file = `${ws.dir}/cg.${tag}`;
  const log = `${ws.dir}/vg.${tag}.log`;
  const child = ws.spawn(
    'valgrind',
    [
      '--tool=cachegrind',
      '--cache-sim=no',
      `--cachegrind-out-file=${file}`,
      `--log-file=${log}`,
      ...t.command(port, backend, ws),
    ],
    ['ignore', 'ignore', 'ignore'],
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Start-up under valgrind takes seconds: waitListening gives up after ~5 s, so ask again.
  for (let i = 0; ; i++) {
    try {
      await waitListening(port);
      break;
    } catch (error) {
      if (i >= 12 || child.exitCode !== null) throw error;
    }
  }
  const drive = t.sessions ? sessions : keepAliveGets;
  await drive(port, warmup, 16);
  await drive(port, n, 16);
  child.kill('SIGINT');
  await exited;
  const text = spawnSync('cat', [log], { encoding: 'utf8' }).stdout;
  const m = /I\s+refs:\s+([\d,]+)/.exec(text);
  if (!m) throw new Error(`${t.name}: no instruction count in ${log}`);
  return { total: Number(m[1]!.replace(/,/g, '')), file };
}

const GC =
  /Mark|Scaveng|Sweep|Heap::|GCTracer|Evacuat|RememberedSet|SlotSet|Compactor|MemoryAllocator|Unmapper|RecordWrite|WriteBarrier|MinorGC|LiveObject|BodyDescriptor|ObjectVisitor|PagedSpace|NewSpace|SemiSpace|FreeList|Page::/;
const COMPILER =
  /compiler::|[Mm]aglev|[Tt]urbo[Ff]an|baseline::|interpreter::Bytecode|Parser|Scanner|AstNode|Compile|[Dd]eoptimiz|Zone/;

interface Split {
  steady: number;
  gc: number;
  compiler: number;
  js: number;
  top: [string, number][];
}

/** Per request, from the difference of the two runs' cachegrind files. */
function split(a: string, b: string, n: number, ws: Workspace): Split {
  const diff = `${b}.diff`;
  const d = spawnSync('cg_diff', [a, b], { encoding: 'utf8', maxBuffer: 1 << 28 });
  ws.write(diff.slice(ws.dir.length + 1), d.stdout);
  const out = spawnSync('cg_annotate', ['--threshold=0', diff], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  }).stdout;
  let gc = 0;
  let compiler = 0;
  let js = 0;
  let total = 0;
  const rest: [string, number][] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(-?[\d,]+) \([ \-\d.]+%\)\s+(.*)$/.exec(line);
    if (!m || line.includes('PROGRAM TOTALS')) continue;
    const ir = Number(m[1]!.replace(/,/g, '')) / n;
    const fn = m[2]!;
    total += ir;
    if (GC.test(fn)) gc += ir;
    else if (COMPILER.test(fn)) compiler += ir;
    else if (fn.startsWith('???:???')) js += ir;
    else rest.push([fn.replace(/^\?\?\?:/, '').slice(0, 110), ir]);
  }
  rest.sort((x, y) => y[1] - x[1]);
  return { steady: total - gc - compiler, gc, compiler, js, top: rest.slice(0, arg('top', 12)) };
}

async function main(): Promise<void> {
  if (spawnSync('valgrind', ['--version']).status !== 0) {
    process.stderr.write('bench/instructions: valgrind is not installed (apt-get install valgrind)\n');
    process.exit(2);
  }
  const requests = arg('requests', 8000);
  const warmup = arg('warmup', 5000);
  // Fixed hash and random seeds: without them V8's layout of hash tables moves a count between runs.
  const node = [process.execPath, '--single-threaded', '--hash-seed=1', '--random-seed=1'];
  const sessionsAt = process.argv.indexOf('--sessions');
  const short = sessionsAt >= 0 ? process.argv[sessionsAt + 1] : undefined;
  if (short !== undefined && short !== 'stream' && short !== 'http') {
    process.stderr.write('bench/instructions: --sessions takes stream or http\n');
    process.exit(2);
  }
  const sessions = short !== undefined;
  const nginxTarget = (
    name: string,
    block: (port: number, backend: number) => string,
    preamble = '',
  ): Target => ({
    name,
    sessions,
    command: (port, backend, ws) => {
      const conf = ws.write(
        `px-${port}.conf`,
        `${preamble}daemon off;\nmaster_process off;\nworker_processes 1;\npid ${ws.dir}/px-${port}.pid;\nerror_log ${ws.dir}/px-error.log;\nevents {}\n${block(port, backend)}`,
      );
      return ['nginx', '-c', conf, '-p', ws.dir];
    },
  });
  /** A floor child of bench/http.ts (`runFloor`) or bench/short.ts (the TCP-handle floors). */
  const floor = (name: string, bench: string, mode: string[]): Target => ({
    name,
    sessions,
    command: (port, backend) => [
      ...node,
      bench,
      ...mode.flatMap((m) => (m === '$' ? [String(port), String(backend)] : [m])),
    ],
  });
  const targets: Target[] =
    short === 'stream'
      ? [
          nginxTarget(
            'nginx stream (1 worker)',
            (port, backend) =>
              `stream {\n server { listen 127.0.0.1:${port}; proxy_pass 127.0.0.1:${backend}; }\n}\n`,
            'load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n',
          ),
          floor('Node floor: TCP handle pipe', SHORT_BENCH, ['--handle-pipe-floor', '$']),
        ]
      : [
          nginxTarget('nginx (1 worker)', (port, backend) =>
            nginxProxyHttp({ port, backendPort: backend, pool: 64, accessLog: 'off' }),
          ),
          ...(short === 'http'
            ? [floor('Node floor: TCP handle HTTP', SHORT_BENCH, ['--handle-http-floor', '$'])]
            : [
                floor('Node floor: byte pipe', HTTP_BENCH, ['--floor-child', '$', 'pipe']),
                floor('Node floor: least HTTP', HTTP_BENCH, ['--floor-child', '$', 'http']),
                floor('Node floor: least HTTP, client on TCP handles', HTTP_BENCH, [
                  '--handle-floor-child',
                  '$',
                ]),
                floor('Node floor: least correct HTTP proxy (d)', HTTP_BENCH, ['--correct-floor-child', '$']),
              ]),
        ];
  const keepwire = (name: string, main: string): Target => ({
    name,
    sessions,
    command: (port, backend, ws) => {
      const conf = ws.write(
        `kw-${port}.conf`,
        short === 'stream'
          ? `stream {\n server { listen 127.0.0.1:${port}; access_log off; proxy_pass 127.0.0.1:${backend}; }\n}\n`
          : `http {\n access_log off;\n upstream app { server 127.0.0.1:${backend}; keepalive 64; }\n server { listen 127.0.0.1:${port}; keepalive_requests 100000; location / { proxy_pass http://app; proxy_http_version 1.1; } }\n}\n`,
      );
      return [...node, main, 'serve', '-c', conf];
    },
  });
  targets.push(keepwire('keepwire', MAIN));
  const before = process.env.KEEPWIRE_BEFORE;
  if (before !== undefined && existsSync(before)) targets.push(keepwire('keepwire before', before));
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
  if (only !== undefined) targets.splice(0, targets.length, ...targets.filter((t) => t.name.includes(only)));
  if (targets.length === 0) {
    process.stderr.write(`bench/instructions: no target's name contains "${only}"\n`);
    process.exit(2);
  }

  process.stdout.write(
    `date: ${new Date().toISOString()}\nnode: ${process.version}; ${version('nginx', ['-v'])}; ${version('valgrind', ['--version'])}\n` +
      `${requests} ${sessions ? `short ${short} sessions` : 'requests'} measured after ${warmup} of warm-up, 16 connections${sessions ? ' at a time' : ''}, user-space instructions per ${sessions ? 'session' : 'request'}\n\n`,
  );
  const ws = new Workspace('kw-instructions-');
  try {
    const backend = await freePort();
    startNginx(ws, 'backend', nginxBackendHttp(backend), { workers: 1 });
    await waitListening(backend);
    const results: { name: string; total: number; s: Split }[] = [];
    for (const t of targets) {
      const a = await countOnce(ws, t, backend, BASE, warmup);
      const b = await countOnce(ws, t, backend, BASE + requests, warmup);
      const s = split(a.file, b.file, requests, ws);
      results.push({ name: t.name, total: (b.total - a.total) / requests, s });
      process.stderr.write(`${t.name}: done\n`);
    }
    // Ratios are to nginx when it was counted, else to the first target.
    const first = results[0]!.s.steady;
    process.stdout.write(
      `| target | instructions per request | steady (no GC, no compiler) | ratio to ${results[0]!.name} (steady)` +
        ' | code without symbols (Node: JIT-compiled JS; nginx: its stripped binary) | GC | compiler |\n|---|---|---|---|---|---|---|\n',
    );
    for (const r of results)
      process.stdout.write(
        `| ${r.name} | ${r.total.toFixed(0)} | ${r.s.steady.toFixed(0)} | ${(r.s.steady / first).toFixed(2)}× | ${r.s.js.toFixed(0)} | ${r.s.gc.toFixed(0)} | ${r.s.compiler.toFixed(0)} |\n`,
      );
    for (const r of results.filter((r) => !r.name.startsWith('nginx'))) {
      process.stdout.write(`\n${r.name}: the largest named functions per request (steady)\n`);
      for (const [fn, ir] of r.s.top) process.stdout.write(`  ${ir.toFixed(0).padStart(6)}  ${fn}\n`);
    }
  } finally {
    await ws.stop();
  }
}

const giveUp = setTimeout(() => {
  process.stderr.write('bench/instructions: gave up after 30 minutes\n');
  process.exit(1);
}, 30 * 60_000);
giveUp.unref();
await main();
