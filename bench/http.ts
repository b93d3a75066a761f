/**
 * L7 throughput in one run: wrk (keep-alive clients) against direct, keepwire
 * serve, nginx (1 worker, upstream keepalive), HAProxy (1 thread, mode http)
 * and Node `http-proxy` with a keep-alive agent, all on loopback and all in
 * front of the same backend (an nginx worker answering a 98-byte body, so the
 * backend is never the bottleneck).
 *
 *   node dist/bench/http.js [--seconds 5] [--connections 64] [--rounds 3]
 *
 * Not a test: prints req/s, p50, p99 per target and the ratios
 * keepwire/nginx and keepwire/http-proxy. Everything shares the same cores,
 * so absolute numbers drift between runs; ratios within one run hold.
 */
import http from 'node:http';
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
  Workspace,
  type WrkResult,
  waitListening,
  wrk,
} from './common.js';

const SELF = fileURLToPath(import.meta.url);

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

async function main(): Promise<void> {
  if (process.argv[2] === '--http-proxy-child') {
    await runHttpProxy(Number(process.argv[3]), Number(process.argv[4]));
    return;
  }
  const seconds = arg('seconds', 5);
  const connections = arg('connections', 64);
  const rounds = arg('rounds', 3);
  const ws = new Workspace('keepwire-bench-http-');
  const [backend, kw, ng, hp, hpx, kwQuiet, ngLog] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  try {
    // Backend and nginx proxy are separate nginx processes so each has one worker of its own.
    startNginx(ws, 'backend', nginxBackendHttp(backend));
    startNginx(ws, 'nginx', nginxProxyHttp({ port: ng, backendPort: backend, pool: 64, accessLog: 'off' }));
    // The same proxy logging every request (nginx's default), to /dev/null.
    startNginx(
      ws,
      'nginx-log',
      nginxProxyHttp({ port: ngLog, backendPort: backend, pool: 64, accessLog: '/dev/null' }),
    );
    const keepwireConf = (port: number, accessLog: string) =>
      `http {
    access_log ${accessLog};
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${port};
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
    }
}
`;
    // Access log lines (keepwire's default: one JSON line per request) go to /dev/null here.
    ws.spawn(process.execPath, [MAIN, 'serve', '-c', ws.write('keepwire.conf', keepwireConf(kw, 'on'))]);
    ws.spawn(process.execPath, [
      MAIN,
      'serve',
      '-c',
      ws.write('keepwire-quiet.conf', keepwireConf(kwQuiet, 'off')),
    ]);
    const hpConf = ws.write(
      'haproxy.cfg',
      `global
    maxconn 4096
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
listen web
    bind 127.0.0.1:${hp}
    server s 127.0.0.1:${backend}
`,
    );
    ws.spawn('haproxy', ['-f', hpConf, '-db']);
    ws.spawn(process.execPath, [SELF, '--http-proxy-child', String(hpx), String(backend)]);
    for (const p of [backend, kw, ng, hp, hpx, kwQuiet, ngLog]) await waitListening(p);

    const targets: [string, number][] = [
      ['direct', backend],
      ['keepwire', kw],
      ['keepwire access_log off', kwQuiet],
      ['nginx', ng],
      ['nginx access_log on', ngLog],
      ['HAProxy', hp],
      ['http-proxy', hpx],
    ];
    // Warm-up (JIT, pools), then `rounds` measured runs per target,
    // interleaved so a slow spell of the shared machine hits every target;
    // each figure is the median run (by req/s) of its target.
    for (const [name, port] of targets) wrk(name, port, 1, connections);
    const runs = new Map<string, WrkResult[]>(targets.map(([name]) => [name, []]));
    for (let round = 0; round < rounds; round++)
      for (const [name, port] of targets) runs.get(name)!.push(wrk(name, port, seconds, connections));
    const results = targets.map(([name]) => {
      const sorted = [...runs.get(name)!].sort((a, b) => a.rps - b.rps);
      return sorted[Math.floor(sorted.length / 2)]!;
    });
    const spread = (name: string) =>
      runs
        .get(name)!
        .map((r) => Math.round(r.rps))
        .join(' / ');

    console.log(
      `wrk -t1 -c${connections} -d${seconds}s, ${BODY.length + 1}-byte responses, ${cpus().length} CPUs, node ${process.version}`,
    );
    console.log(`median of ${rounds} interleaved runs per target`);
    console.log('| target | req/s | p50 ms | p99 ms | req/s of each run | notes |');
    console.log('|---|---|---|---|---|---|');
    for (const r of results)
      console.log(
        `| ${r.name} | ${Math.round(r.rps)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${spread(r.name)} | ${r.errors} |`,
      );
    const by = (n: string) => results.find((r) => r.name === n)!;
    const k = by('keepwire');
    const kq = by('keepwire access_log off');
    const ratio = (a: WrkResult, b: WrkResult) => (a.rps / b.rps).toFixed(2);
    const p99 = (a: WrkResult, b: WrkResult) => (a.p99Ms / b.p99Ms).toFixed(2);
    console.log(
      `keepwire/nginx req/s (targets >= 0.6, p99 <= 2): both without access log ${ratio(kq, by('nginx'))}, p99 ${p99(kq, by('nginx'))}; both logging every request ${ratio(k, by('nginx access_log on'))}, p99 ${p99(k, by('nginx access_log on'))}; keepwire logging, nginx not ${ratio(k, by('nginx'))}, p99 ${p99(k, by('nginx'))}`,
    );
    const perRound = (a: string, b: string) =>
      runs
        .get(a)!
        .map((r, i) => (r.rps / runs.get(b)![i]!.rps).toFixed(2))
        .join(' / ');
    console.log(
      `keepwire/nginx req/s in each round: without access log ${perRound('keepwire access_log off', 'nginx')}; both logging ${perRound('keepwire', 'nginx access_log on')}`,
    );
    console.log(
      `keepwire/http-proxy ${ratio(k, by('http-proxy'))} (target >= 2; http-proxy does not log); keepwire/HAProxy ${ratio(kq, by('HAProxy'))} (neither logging)`,
    );
  } finally {
    await ws.stop();
  }
}

await main();
