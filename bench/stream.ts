/**
 * L4 throughput in one run: direct, keepwire serve, nginx stream and HAProxy
 * mode tcp, all on loopback, interleaved so drift hits every target alike.
 *
 *   node dist/bench/stream.js [--bulk-mb 256] [--seconds 4] [--concurrency 32] [--rounds 2]
 *
 * Bulk: one connection uploads N MiB; the backend acknowledges the last byte.
 * Short sessions: C parallel clients each connect, send 1 byte, get it echoed,
 * and the backend closes; counted for S seconds. The backend is a separate
 * Node process, each proxy runs as one process/worker/thread, and this
 * process drives the load, so everything shares the same cores.
 * Not a test: prints a table and the ratios keepwire/nginx and keepwire/HAProxy.
 * nginx needs its stream module (Debian: libnginx-mod-stream).
 *
 *   KEEPWIRE_BEFORE=/old/tree/dist/src/cli/main.js node dist/bench/stream.js
 * adds an older keepwire build as one more target (before/after a change).
 */
import { type AddressInfo, connect, createServer } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { arg, freePort, MAIN, startNginx, version, Workspace, waitListening } from './common.js';

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
  echoPort: number;
}

async function startTargets(ws: Workspace, sinkPort: number, echoPort: number): Promise<Target[]> {
  const targets: Target[] = [{ name: 'direct', bulkPort: sinkPort, echoPort }];
  const [kb, ke, nb, ne, hb, he] = await Promise.all(Array.from({ length: 6 }, freePort));

  const kwConf = ws.write(
    'keepwire.conf',
    `events { worker_connections 4096; }
stream {
    server { listen 127.0.0.1:${kb}; proxy_pass 127.0.0.1:${sinkPort}; }
    server { listen 127.0.0.1:${ke}; proxy_pass 127.0.0.1:${echoPort}; }
}
`,
  );
  // Session log lines are part of keepwire's work; they go to /dev/null here.
  ws.spawn(process.execPath, [MAIN, 'serve', '-c', kwConf]);
  targets.push({ name: 'keepwire', bulkPort: kb!, echoPort: ke! });
  const before = process.env.KEEPWIRE_BEFORE;
  if (before) {
    const [bb, be] = await Promise.all([freePort(), freePort()]);
    const conf = ws.write(
      'keepwire-before.conf',
      `events { worker_connections 4096; }
stream {
    server { listen 127.0.0.1:${bb}; proxy_pass 127.0.0.1:${sinkPort}; }
    server { listen 127.0.0.1:${be}; proxy_pass 127.0.0.1:${echoPort}; }
}
`,
    );
    ws.spawn(process.execPath, [before, 'serve', '-c', conf]);
    targets.push({ name: `keepwire before (${before})`, bulkPort: bb, echoPort: be });
  }

  startNginx(
    ws,
    'nginx',
    `stream {
    server { listen 127.0.0.1:${nb}; proxy_pass 127.0.0.1:${sinkPort}; }
    server { listen 127.0.0.1:${ne}; proxy_pass 127.0.0.1:${echoPort}; }
}
`,
    { preamble: 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n' },
  );
  targets.push({ name: 'nginx stream', bulkPort: nb!, echoPort: ne! });

  const hpConf = ws.write(
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
    bind 127.0.0.1:${hb}
    server s 127.0.0.1:${sinkPort}
listen echo
    bind 127.0.0.1:${he}
    server s 127.0.0.1:${echoPort}
`,
  );
  ws.spawn('haproxy', ['-f', hpConf, '-db']);
  targets.push({ name: 'HAProxy tcp', bulkPort: hb!, echoPort: he! });

  for (const t of targets) {
    await waitListening(t.bulkPort);
    await waitListening(t.echoPort);
  }
  return targets;
}

async function main(): Promise<void> {
  const bulkMb = arg('bulk-mb', 256);
  const seconds = arg('seconds', 4);
  const concurrency = arg('concurrency', 32);
  const rounds = arg('rounds', 2);
  const bulkBytes = bulkMb * 1024 * 1024;
  const ws = new Workspace('keepwire-bench-');
  const best = new Map<string, { mbps: number; cps: number }>();
  try {
    const backend = ws.spawn(
      process.execPath,
      [SELF, '--backend', String(bulkBytes)],
      ['ignore', 'pipe', 'inherit'],
    );
    const ports = await new Promise<string>((resolve) =>
      backend.stdout!.once('data', (d) => resolve(String(d))),
    );
    const [sinkPort, echoPort] = ports.trim().split(' ').map(Number) as [number, number];
    const targets = await startTargets(ws, sinkPort, echoPort);
    for (let round = 0; round < rounds; round++) {
      for (const t of targets) {
        const mbps = await bulk(t.bulkPort, bulkBytes);
        const cps = await shortSessions(t.echoPort, seconds, concurrency);
        process.stderr.write(
          `round ${round + 1} ${t.name}: ${mbps.toFixed(0)} MB/s, ${cps.toFixed(0)} conn/s\n`,
        );
        const b = best.get(t.name) ?? { mbps: 0, cps: 0 };
        best.set(t.name, { mbps: Math.max(b.mbps, mbps), cps: Math.max(b.cps, cps) });
      }
    }
  } finally {
    await ws.stop();
  }
  const kw = best.get('keepwire')!;
  const lines = [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, Linux ${version('uname', ['-r'])}, Node ${process.version}`,
    `peers: ${version('nginx', ['-v'])}; ${version('haproxy', ['-v'])}`,
    `bulk ${bulkMb} MiB upload on one connection; short sessions: ${concurrency} parallel clients, 1-byte echo, ${seconds} s; best of ${rounds} interleaved rounds`,
    '',
    '| target | bulk MB/s | short sessions conn/s | keepwire ratio (bulk, conn/s) |',
    '|---|---|---|---|',
    ...[...best].map(([name, r]) => {
      const ratio =
        name === 'keepwire' ? '—' : `${(kw.mbps / r.mbps).toFixed(2)}×, ${(kw.cps / r.cps).toFixed(2)}×`;
      return `| ${name} | ${r.mbps.toFixed(0)} | ${r.cps.toFixed(0)} | ${ratio} |`;
    }),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[2] === '--backend') runBackend();
else await main();
