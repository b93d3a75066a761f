/**
 * HTTP/2 on the client leg in one run: h2load (Debian's nghttp2-client)
 * against keepwire (`http2 on`) and nginx (`listen ... http2`, nginx 1.22's
 * syntax), each as h2c with prior knowledge on a cleartext listener and as
 * h2 by ALPN over TLS, all proxying to the same HTTP/1.1 backend (an nginx
 * worker answering a 98-byte body) through a keep-alive pool; plus h2load
 * straight at the backend over HTTP/1.1 (`--h1`) for scale.
 *
 *   node dist/bench/h2.js [--seconds 5] [--clients 16] [--streams 8] [--rounds 3]
 *
 * Not a test: prints req/s, mean and max time per request per target (h2load
 * reports no percentiles), the req/s of each interleaved round, and the
 * keepwire/nginx ratios for h2c and TLS. Everything shares the same cores,
 * so absolute numbers drift between runs; ratios within one run hold.
 */

import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { selfSignedCertificate } from '../src/lab/certificate.js';
import {
  arg,
  BODY,
  freePort,
  MAIN,
  nginxBackendHttp,
  startNginx,
  version,
  Workspace,
  waitListening,
} from './common.js';

export interface H2loadResult {
  name: string;
  rps: number;
  meanMs: number;
  maxMs: number;
  succeeded: number;
  failed: number;
}

/** h2load's time column (`812us`, `1.20ms`, `2.01s`) in milliseconds. */
function h2Ms(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec((text ?? '').trim());
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/** One h2load run (one thread) for `seconds` against `url`; `extra` e.g. `--h1`. */
function h2load(
  name: string,
  url: string,
  seconds: number,
  clients: number,
  streams: number,
  extra: string[] = [],
): H2loadResult {
  const r = spawnSync(
    'h2load',
    ['-t1', `-c${clients}`, `-m${streams}`, `-D${seconds}`, '--warm-up-time=500ms', ...extra, url],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
  );
  const out = r.stdout ?? '';
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? Number.NaN);
  // time for request:   min   max   mean   sd   +/- sd
  const t = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  const req = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  if (!req || Number.isNaN(rps)) throw new Error(`h2load ${name} failed: ${out}${r.stderr ?? ''}`);
  return {
    name,
    rps,
    meanMs: h2Ms(t?.[3]),
    maxMs: h2Ms(t?.[2]),
    succeeded: Number(req?.[1] ?? 0),
    failed: Number(req?.[2] ?? 0),
  };
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 5);
  const clients = arg('clients', 16);
  const streams = arg('streams', 8);
  const rounds = arg('rounds', 3);
  const ws = new Workspace('keepwire-bench-h2-');
  try {
    const [backend, kwPlain, kwTls, ngPlain, ngTls] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const { cert: crt, key } = selfSignedCertificate(ws.dir, 'localhost');

    // Backend and the nginx proxy are separate nginx processes so each has one worker of its own.
    startNginx(ws, 'backend', nginxBackendHttp(backend));
    // Both proxies: keep-alive pool of 64 to the backend, no access log, 100000 requests per connection.
    startNginx(
      ws,
      'nginx',
      `http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${ngPlain} http2;
        listen 127.0.0.1:${ngTls} ssl http2;
        ssl_certificate ${crt};
        ssl_certificate_key ${key};
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
`,
    );
    const keepwireConf = ws.write(
      'keepwire.conf',
      `http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${kwPlain};
        listen 127.0.0.1:${kwTls} ssl;
        http2 on;
        ssl_certificate ${crt};
        ssl_certificate_key ${key};
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
    }
}
`,
    );
    ws.spawn(process.execPath, [MAIN, 'serve', '-c', keepwireConf]);
    for (const p of [backend, kwPlain, kwTls, ngPlain, ngTls]) await waitListening(p);

    const targets: [string, string, string[]][] = [
      ['direct HTTP/1.1 (h2load --h1)', `http://127.0.0.1:${backend}/`, ['--h1']],
      ['keepwire h2c', `http://127.0.0.1:${kwPlain}/`, []],
      ['nginx h2c', `http://127.0.0.1:${ngPlain}/`, []],
      ['keepwire h2 (TLS, ALPN)', `https://127.0.0.1:${kwTls}/`, []],
      ['nginx h2 (TLS, ALPN)', `https://127.0.0.1:${ngTls}/`, []],
    ];
    // Warm-up (JIT, pools, TLS), then `rounds` measured runs per target,
    // interleaved so a slow spell of the shared machine hits every target;
    // each figure is the median run (by req/s) of its target.
    for (const [name, url, extra] of targets) h2load(name, url, 1, clients, streams, extra);
    const runs = new Map<string, H2loadResult[]>(targets.map(([name]) => [name, []]));
    for (let round = 0; round < rounds; round++)
      for (const [name, url, extra] of targets)
        runs.get(name)!.push(h2load(name, url, seconds, clients, streams, extra));
    const median = (name: string) => {
      const sorted = [...runs.get(name)!].sort((a, b) => a.rps - b.rps);
      return sorted[Math.floor(sorted.length / 2)]!;
    };
    const spread = (name: string) =>
      runs
        .get(name)!
        .map((r) => Math.round(r.rps))
        .join(' / ');

    console.log(
      `h2load -t1 -c${clients} -m${streams} -D${seconds}, ${BODY.length + 1}-byte responses, ${cpus().length} CPUs, node ${process.version}, ${version('nginx', ['-v'])}, ${version('h2load', ['--version'])}`,
    );
    console.log(
      `median of ${rounds} interleaved runs per target; HTTP/1.1 upstream with a keep-alive pool of 64`,
    );
    console.log('| target | req/s | mean ms | max ms | req/s of each run | failed |');
    console.log('|---|---|---|---|---|---|');
    for (const [name] of targets) {
      const r = median(name);
      const failed = runs.get(name)!.reduce((n, x) => n + x.failed, 0);
      console.log(
        `| ${name} | ${Math.round(r.rps)} | ${r.meanMs.toFixed(2)} | ${r.maxMs.toFixed(1)} | ${spread(name)} | ${failed} |`,
      );
    }
    const ratio = (a: string, b: string) => (median(a).rps / median(b).rps).toFixed(2);
    const perRound = (a: string, b: string) =>
      runs
        .get(a)!
        .map((r, i) => (r.rps / runs.get(b)![i]!.rps).toFixed(2))
        .join(' / ');
    console.log(
      `keepwire/nginx req/s: h2c ${ratio('keepwire h2c', 'nginx h2c')} (rounds ${perRound('keepwire h2c', 'nginx h2c')}); TLS ${ratio('keepwire h2 (TLS, ALPN)', 'nginx h2 (TLS, ALPN)')} (rounds ${perRound('keepwire h2 (TLS, ALPN)', 'nginx h2 (TLS, ALPN)')})`,
    );
  } finally {
    await ws.stop();
  }
}

await main();
