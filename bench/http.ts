/**
 * L7 throughput in one run: wrk (keep-alive clients) against direct, keepwire
 * serve, nginx (1 worker, upstream keepalive), HAProxy (1 thread, mode http)
 * and Node `http-proxy` with a keep-alive agent, all on loopback and all in
 * front of the same backend (an nginx worker answering a 98-byte body, so the
 * backend is never the bottleneck).
 *
 *   node dist/bench/http.js [--seconds 5] [--connections 64]
 *
 * Not a test: prints req/s, p50, p99 per target and the ratios
 * keepwire/nginx and keepwire/http-proxy. Everything shares the same cores,
 * so absolute numbers drift between runs; ratios within one run hold.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { type AddressInfo, connect, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const BODY = 'x'.repeat(97);

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

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

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${port}`);
}

interface Result {
  name: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: string;
}

function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function wrk(name: string, port: number, seconds: number, connections: number): Result {
  const r = spawnSync(
    'wrk',
    ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`],
    { encoding: 'utf8' },
  );
  const out = r.stdout ?? '';
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const errors = /Socket errors:.*|Non-2xx.*/g.exec(out)?.[0] ?? '';
  return { name, rps, p50Ms: p50, p99Ms: p99, errors };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--http-proxy-child') {
    await runHttpProxy(Number(process.argv[3]), Number(process.argv[4]));
    return;
  }
  const seconds = arg('seconds', 5);
  const connections = arg('connections', 64);
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-bench-http-'));
  const procs: ChildProcess[] = [];
  const [backend, kw, ng, hp, hpx] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  try {
    // Backend and nginx proxy are separate nginx processes so each has one worker of its own.
    const backendConf = join(dir, 'backend.conf');
    writeFileSync(
      backendConf,
      `daemon off;
worker_processes 1;
pid ${dir}/backend.pid;
error_log ${dir}/backend-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    server { listen 127.0.0.1:${backend}; keepalive_requests 100000; location / { return 200 "${BODY}\\n"; } }
}
`,
    );
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${ng};
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
`,
    );
    procs.push(spawn('nginx', ['-c', backendConf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] }));
    procs.push(
      spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] }),
    );
    writeFileSync(
      join(dir, 'keepwire.conf'),
      `http {
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${kw};
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
    }
}
`,
    );
    // Access log lines are part of keepwire's work; they go to /dev/null here.
    procs.push(
      spawn(process.execPath, [MAIN, 'serve', '-c', join(dir, 'keepwire.conf')], {
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
    writeFileSync(
      join(dir, 'haproxy.cfg'),
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
    procs.push(
      spawn('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], { stdio: ['ignore', 'ignore', 'inherit'] }),
    );
    procs.push(
      spawn(process.execPath, [SELF, '--http-proxy-child', String(hpx), String(backend)], {
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
    for (const p of [backend, kw, ng, hp, hpx]) await waitListening(p);

    const targets: [string, number][] = [
      ['direct', backend],
      ['keepwire', kw],
      ['nginx', ng],
      ['HAProxy', hp],
      ['http-proxy', hpx],
    ];
    // Warm-up (JIT, pools), then one measured run per target.
    for (const [name, port] of targets) wrk(name, port, 1, connections);
    const results = targets.map(([name, port]) => wrk(name, port, seconds, connections));

    console.log(
      `wrk -t1 -c${connections} -d${seconds}s, ${BODY.length + 1}-byte responses, ${cpus().length} CPUs, node ${process.version}`,
    );
    console.log('| target | req/s | p50 ms | p99 ms | notes |');
    console.log('|---|---|---|---|---|');
    for (const r of results)
      console.log(
        `| ${r.name} | ${Math.round(r.rps)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.errors} |`,
      );
    const by = (n: string) => results.find((r) => r.name === n)!;
    const k = by('keepwire');
    console.log(
      `keepwire/nginx req/s ${(k.rps / by('nginx').rps).toFixed(2)} (target >= 0.6); keepwire/http-proxy ${(k.rps / by('http-proxy').rps).toFixed(2)} (target >= 2); keepwire/HAProxy ${(k.rps / by('HAProxy').rps).toFixed(2)}; p99 keepwire/nginx ${(k.p99Ms / by('nginx').p99Ms).toFixed(2)} (target <= 2)`,
    );
  } finally {
    for (const p of procs) p.kill('SIGKILL');
  }
}

await main();
