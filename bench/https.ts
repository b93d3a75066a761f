/**
 * HTTPS in one run: keepwire `listen ... ssl` against nginx `listen ... ssl`,
 * one process each (keepwire serve, nginx with 1 worker), the same ECDSA
 * P-256 certificate, TLS 1.3 only with each side's default cipher suites
 * (wrk negotiates TLS_AES_256_GCM_SHA384 with both), both proxying to the
 * same plain-HTTP backend (an nginx answering a 98-byte body) through a
 * keep-alive pool, access logs off on both.
 *
 *   node dist/bench/https.js [--seconds 5] [--rounds 3] [--connections 64] [--handshake-connections 16]
 *
 * Three measures, interleaved across targets in every round:
 *   - keep-alive: wrk's `--connections` keep-alive connections, many requests
 *     each (the TLS record path: req/s);
 *   - resumed handshakes: wrk with `Connection: close`, so every request is a
 *     new TCP connection and TLS handshake. wrk keeps each connection's
 *     session (SSL_clear) and offers it on the next one, so with tickets on
 *     (both servers' default) these are resumed (PSK) handshakes: nginx's
 *     $ssl_session_reused says `r` for all but the first per connection;
 *   - full handshakes: the same against a second server of each with
 *     `ssl_session_tickets off;` and no session cache, so nothing resumes
 *     (ECDHE + an ECDSA signature every time).
 * Before measuring, `openssl s_client -sess_out/-sess_in` checks that each
 * target resumes (or not) as the measure assumes.
 *
 * Each figure is the median of the rounds (by req/s), the req/s of every
 * round is printed as the spread, and the CPU µs per request is the target's
 * process tree's user+system time from /proc over the requests wrk
 * completed. Not a test; ratios within one run are the meaningful part on a
 * shared machine.
 */

import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
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
  type WrkResult,
  waitListening,
  wrk,
} from './common.js';

interface Target {
  name: string;
  port: number;
  /** Root of the process tree whose CPU time is charged to this target. */
  pid: number;
}

interface Measure {
  name: string;
  connections: number;
  headers: string[];
  /** Which targets this measure runs against (tickets on, or tickets off). */
  tickets: boolean;
}

/** `New` or `Reused`: a second s_client connection offering the first one's session. */
async function resumption(port: number, dir: string): Promise<string> {
  const sess = join(dir, `s-${port}.sess`);
  const once = (args: string[]) =>
    new Promise<string>((resolve) => {
      const child = spawn('openssl', [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-tls1_3',
        '-ign_eof',
        ...args,
      ]);
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString('latin1');
      });
      child.stderr.resume();
      const timer = setTimeout(() => child.kill(), 10_000);
      child.on('close', () => {
        clearTimeout(timer);
        resolve(/^(New|Reused),/m.exec(out)?.[1] ?? 'failed');
      });
      child.stdin.end('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n');
    });
  await once(['-sess_out', sess]);
  return once(['-sess_in', sess]);
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 5);
  const rounds = arg('rounds', 3);
  const connections = arg('connections', 64);
  const handshakeConnections = arg('handshake-connections', 16);
  const ws = new Workspace('keepwire-bench-https-');
  try {
    const { cert, key } = selfSignedCertificate(ws.dir, 'bench.keepwire.test');
    const backend = await freePort();
    startNginx(ws, 'backend', nginxBackendHttp(backend), { workers: 2 });
    const tls = (tickets: boolean) =>
      `ssl_certificate ${cert};
        ssl_certificate_key ${key};
        ssl_protocols TLSv1.3;${tickets ? '' : '\n        ssl_session_tickets off;'}`;
    const targets = new Map<string, Target>();
    for (const tickets of [true, false]) {
      const suffix = tickets ? '' : ' tickets off';
      const kw = await freePort();
      const kwPid = ws.spawn(process.execPath, [
        MAIN,
        'serve',
        '-c',
        ws.write(
          `keepwire${tickets ? '' : '-no-tickets'}.conf`,
          `http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${kw} ssl;
        ${tls(tickets)}
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
    }
}
`,
        ),
      ]).pid!;
      targets.set(`keepwire${suffix}`, { name: `keepwire${suffix}`, port: kw, pid: kwPid });
      const ng = await freePort();
      const ngPid = startNginx(
        ws,
        `nginx${tickets ? '' : '-no-tickets'}`,
        `http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${ng} ssl;
        ${tls(tickets)}
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
`,
      ).pid!;
      targets.set(`nginx${suffix}`, { name: `nginx${suffix}`, port: ng, pid: ngPid });
    }
    await waitListening(backend);
    for (const t of targets.values()) await waitListening(t.port);

    console.log(
      `${cpus().length} × ${cpus()[0]?.model.trim()}, Linux ${version('uname', ['-r'])}, node ${process.version}, ${version('nginx', ['-v'])}, ${version('openssl', ['version'])}, ${version('wrk', ['-v'])}`,
    );
    console.log(
      `load average at start ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    const checks = await Promise.all(
      [...targets.values()].map(async (t) => `${t.name}: ${await resumption(t.port, ws.dir)}`),
    );
    console.log(
      `second s_client connection offering the first one's session (TLS 1.3): ${checks.join('; ')}`,
    );

    const measures: Measure[] = [
      { name: 'keep-alive', connections, headers: [], tickets: true },
      {
        name: 'resumed handshakes',
        connections: handshakeConnections,
        headers: ['Connection: close'],
        tickets: true,
      },
      {
        name: 'full handshakes',
        connections: handshakeConnections,
        headers: ['Connection: close'],
        tickets: false,
      },
    ];
    const pairs = (m: Measure): [Target, Target] => {
      const suffix = m.tickets ? '' : ' tickets off';
      return [targets.get(`keepwire${suffix}`)!, targets.get(`nginx${suffix}`)!];
    };
    // Warm-up (JIT, pools, session caches).
    for (const m of measures)
      for (const t of pairs(m))
        await wrk(t.name, t.port, 1, m.connections, { scheme: 'https', headers: m.headers });
    const runs = new Map<string, WrkResult[]>();
    for (let round = 0; round < rounds; round++)
      for (const m of measures)
        for (const t of pairs(m)) {
          const key = `${m.name}|${t.name}`;
          const r = await wrk(t.name, t.port, seconds, m.connections, {
            scheme: 'https',
            headers: m.headers,
            cpuOf: t.pid,
          });
          runs.set(key, [...(runs.get(key) ?? []), r]);
        }
    console.log(
      `load average at end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    console.log(
      `wrk -t1 -d${seconds}s, ${BODY.length + 1}-byte responses, median of ${rounds} interleaved rounds`,
    );
    console.log(
      '| measure | target | conns | req/s | p50 ms | p99 ms | CPU µs/req | req/s of each round | errors |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    const median = (key: string) => {
      const sorted = [...runs.get(key)!].sort((a, b) => a.rps - b.rps);
      return sorted[Math.floor(sorted.length / 2)]!;
    };
    for (const m of measures)
      for (const t of pairs(m)) {
        const key = `${m.name}|${t.name}`;
        const r = median(key);
        console.log(
          `| ${m.name} | ${t.name} | ${m.connections} | ${Math.round(r.rps)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.cpuUsPerReq.toFixed(0)} | ${runs
            .get(key)!
            .map((x) => Math.round(x.rps))
            .join(' / ')} | ${r.errors} |`,
        );
      }
    for (const m of measures) {
      const [k, n] = pairs(m).map((t) => `${m.name}|${t.name}`) as [string, string];
      const perRound = runs
        .get(k)!
        .map((r, i) => (r.rps / runs.get(n)![i]!.rps).toFixed(2))
        .join(' / ');
      const km = median(k);
      const nm = median(n);
      console.log(
        `${m.name}: keepwire/nginx req/s ${(km.rps / nm.rps).toFixed(2)} (each round ${perRound}), CPU µs/req ${(km.cpuUsPerReq / nm.cpuUsPerReq).toFixed(2)}×`,
      );
    }
  } finally {
    await ws.stop();
  }
}

await main();
