/**
 * gRPC unary calls in one run: a `@grpc/grpc-js` client (one channel, a fixed
 * number of calls in flight) straight at a grpc-js server, through keepwire
 * (`http2 on`, `grpc_pass`) and through nginx (`listen ... http2`,
 * `grpc_pass` with an upstream keep-alive pool: without one nginx opens an
 * upstream connection per call), all on loopback.
 *
 *   node dist/bench/grpc.js [--seconds 5] [--concurrency 32] [--rounds 3] [--max-calls 200000]
 *
 * Each run is bounded by time and by count. Not a test: prints calls/s, p50,
 * p99, the proxy's CPU time per call (user + system of the serving process,
 * from /proc) per target, the calls/s of each interleaved round, and the
 * keepwire/nginx ratios. The client, the backend and the proxy are Node or
 * nginx processes sharing the same cores: the grpc-js client and server
 * cost more CPU per call than either proxy, so calls/s ratios understate the
 * difference between the proxies; CPU per call does not.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { LAB_SERVICE } from '../src/lab/grpc-service.js';
import { arg, BODY, freePort, MAIN, startNginx, version, Workspace, waitListening } from './common.js';

const SELF = fileURLToPath(import.meta.url);

/** Child mode: the grpc-js backend, answering Ping with BODY. */
function runServer(port: number): void {
  const server = new grpc.Server();
  server.addService(LAB_SERVICE, {
    watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
    ping: (_call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) =>
      done(null, { body: BODY }),
  });
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error) => {
    if (error) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
  });
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The only child of nginx's master: its one worker, which serves the calls. */
function nginxWorker(masterPid: number): number {
  const children = readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8').trim().split(' ');
  return Number(children[0]);
}

interface RunResult {
  name: string;
  callsPerS: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Proxy CPU microseconds per call; NaN for the direct target. */
  cpuUsPerCall: number;
}

type PingClient = grpc.Client & {
  ping(req: unknown, cb: (e: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
};

/** `concurrency` calls in flight on `client` until `seconds` pass or `maxCalls` completed. */
async function run(
  name: string,
  client: PingClient,
  seconds: number,
  concurrency: number,
  maxCalls: number,
  proxyPid?: number,
): Promise<RunResult> {
  const latencies: number[] = [];
  let errors = 0;
  let started = 0;
  const cpuBefore = proxyPid ? cpuSeconds(proxyPid) : 0;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  const worker = async () => {
    while (started < maxCalls && performance.now() < until) {
      started++;
      const t = performance.now();
      await new Promise<void>((resolve) =>
        client.ping({}, (e) => {
          if (e) errors++;
          else latencies.push(performance.now() - t);
          resolve();
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = proxyPid ? cpuSeconds(proxyPid) - cpuBefore : Number.NaN;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return {
    name,
    callsPerS: latencies.length / elapsedS,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    errors,
    cpuUsPerCall: (cpu * 1e6) / Math.max(1, latencies.length),
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--server-child') {
    runServer(Number(process.argv[3]));
    return;
  }
  const seconds = arg('seconds', 5);
  const concurrency = arg('concurrency', 32);
  const rounds = arg('rounds', 3);
  const maxCalls = arg('max-calls', 200_000);
  const ws = new Workspace('keepwire-bench-grpc-');
  const clients: PingClient[] = [];
  try {
    const [backend, kw, ng] = [await freePort(), await freePort(), await freePort()];
    ws.spawn(process.execPath, [SELF, '--server-child', String(backend)]);
    // nginx's grpc_pass keeps upstream connections only with `keepalive` (one call per connection at a time).
    const ngMaster = startNginx(
      ws,
      'nginx',
      `http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${ng} http2;
        keepalive_requests 1000000;
        location / { grpc_pass grpc://app; }
    }
}
`,
    );
    const kwProc = ws.spawn(process.execPath, [
      MAIN,
      'serve',
      '-c',
      ws.write(
        'keepwire.conf',
        `http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; }
    server {
        listen 127.0.0.1:${kw};
        http2 on;
        keepalive_requests 1000000;
        location / { grpc_pass grpc://app; }
    }
}
`,
      ),
    ]);
    for (const p of [backend, kw, ng]) await waitListening(p);

    const Client = grpc.makeGenericClientConstructor(LAB_SERVICE, 'Lab');
    const channel = (port: number) => {
      const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as PingClient;
      clients.push(c);
      return c;
    };
    const targets: [string, PingClient, number | undefined][] = [
      ['direct', channel(backend), undefined],
      ['keepwire grpc_pass', channel(kw), kwProc.pid],
      ['nginx grpc_pass', channel(ng), nginxWorker(ngMaster.pid!)],
    ];
    // Warm-up (JIT, connections), then `rounds` measured runs per target,
    // interleaved so a slow spell of the shared machine hits every target;
    // each figure is the median run (by calls/s) of its target.
    for (const [name, client] of targets) {
      const warm = await run(name, client, 1, concurrency, maxCalls);
      if (warm.errors > 0 && warm.callsPerS === 0) throw new Error(`${name}: every call failed`);
    }
    const runs = new Map<string, RunResult[]>(targets.map(([name]) => [name, []]));
    for (let round = 0; round < rounds; round++)
      for (const [name, client, pid] of targets)
        runs.get(name)!.push(await run(name, client, seconds, concurrency, maxCalls, pid));
    const median = (name: string) => {
      const sorted = [...runs.get(name)!].sort((a, b) => a.callsPerS - b.callsPerS);
      return sorted[Math.floor(sorted.length / 2)]!;
    };
    const spread = (name: string) =>
      runs
        .get(name)!
        .map((r) => Math.round(r.callsPerS))
        .join(' / ');

    console.log(
      `grpc-js client, 1 channel, ${concurrency} unary calls in flight, ${seconds}s or ${maxCalls} calls per run, ${BODY.length}-byte reply field; ${cpus().length} CPUs, node ${process.version}, ${version('nginx', ['-v'])}`,
    );
    console.log(`median of ${rounds} interleaved runs per target; backend: one grpc-js server process`);
    console.log('| target | calls/s | p50 ms | p99 ms | proxy CPU µs/call | calls/s of each run | errors |');
    console.log('|---|---|---|---|---|---|---|');
    for (const [name] of targets) {
      const r = median(name);
      const errors = runs.get(name)!.reduce((n, x) => n + x.errors, 0);
      const cpu = Number.isNaN(r.cpuUsPerCall) ? '—' : r.cpuUsPerCall.toFixed(1);
      console.log(
        `| ${name} | ${Math.round(r.callsPerS)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${cpu} | ${spread(name)} | ${errors} |`,
      );
    }
    const k = median('keepwire grpc_pass');
    const n = median('nginx grpc_pass');
    const perRound = runs
      .get('keepwire grpc_pass')!
      .map((r, i) => (r.callsPerS / runs.get('nginx grpc_pass')![i]!.callsPerS).toFixed(2))
      .join(' / ');
    console.log(
      `keepwire/nginx calls/s ${(k.callsPerS / n.callsPerS).toFixed(2)} (rounds ${perRound}), p99 ${(k.p99Ms / n.p99Ms).toFixed(2)}, proxy CPU per call ${(k.cpuUsPerCall / n.cpuUsPerCall).toFixed(2)}; keepwire/direct calls/s ${(k.callsPerS / median('direct').callsPerS).toFixed(2)}`,
    );
  } finally {
    for (const c of clients) c.close();
    await ws.stop();
  }
}

await main();
