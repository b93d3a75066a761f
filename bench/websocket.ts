/**
 * WebSocket echo throughput through keepwire with `websocket_heartbeat` on
 * and off: the cost of following every frame header both ways.
 *
 *   node dist/bench/websocket.js [--seconds 4] [--clients 8] [--size 1024] [--window 16] [--rounds 3]
 *
 * A `ws` echo server runs in a child process; two `keepwire serve`
 * processes proxy to it, one with `websocket_heartbeat 1s`, one without.
 * Each of C clients keeps W messages of S bytes in flight and counts echoes
 * for T seconds. Targets are interleaved per round so drift hits both alike;
 * the best round of each counts. Not a test: prints messages/s and the ratio
 * on/off.
 */
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { arg, freePort, MAIN, version, Workspace, waitListening } from './common.js';

const SELF = fileURLToPath(import.meta.url);

function runBackend(): void {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  wss.on('connection', (s) => s.on('message', (data, binary) => s.send(data, { binary })));
  wss.on('listening', () => process.stdout.write(`${(wss.address() as { port: number }).port}\n`));
}

async function echoRate(port: number, seconds: number, clients: number, size: number, window: number) {
  const payload = Buffer.alloc(size, 0x61);
  const sockets = await Promise.all(
    Array.from(
      { length: clients },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        }),
    ),
  );
  let echoes = 0;
  let running = true;
  const started = process.hrtime.bigint();
  await Promise.all(
    sockets
      .map(
        (ws) =>
          new Promise<void>((resolve) => {
            let inFlight = 0;
            ws.on('message', () => {
              echoes++;
              inFlight--;
              if (running) {
                ws.send(payload);
                inFlight++;
              } else if (inFlight === 0) resolve();
            });
            for (; inFlight < window; inFlight++) ws.send(payload);
          }),
      )
      .concat(
        new Promise<void>((resolve) =>
          setTimeout(() => {
            running = false;
            resolve();
          }, seconds * 1000),
        ),
      ),
  );
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  for (const ws of sockets) ws.terminate();
  return echoes / elapsedS;
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 4);
  const clients = arg('clients', 8);
  const size = arg('size', 1024);
  const window = arg('window', 16);
  const rounds = arg('rounds', 3);
  const work = new Workspace('keepwire-bench-ws-');
  const best = new Map<string, number>();
  try {
    const backend = work.spawn(process.execPath, [SELF, '--backend'], ['ignore', 'pipe', 'inherit']);
    const backendPort = Number(
      await new Promise<string>((resolve) => backend.stdout!.once('data', (d) => resolve(String(d)))),
    );
    const targets: { name: string; port: number }[] = [];
    for (const [name, directive] of [
      ['heartbeat off', ''],
      ['heartbeat on', 'websocket_heartbeat 1s;'],
    ] as const) {
      const port = await freePort();
      const conf = work.write(
        `${name.replace(' ', '-')}.conf`,
        `http {
    access_log off;
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://127.0.0.1:${backendPort}; proxy_http_version 1.1; ${directive} }
    }
}
`,
      );
      work.spawn(process.execPath, [MAIN, 'serve', '-c', conf]);
      await waitListening(port);
      targets.push({ name, port });
    }
    for (let round = 0; round < rounds; round++) {
      for (const t of targets) {
        const rate = await echoRate(t.port, seconds, clients, size, window);
        process.stderr.write(`round ${round + 1} ${t.name}: ${rate.toFixed(0)} echoes/s\n`);
        best.set(t.name, Math.max(best.get(t.name) ?? 0, rate));
      }
    }
  } finally {
    await work.stop();
  }
  const off = best.get('heartbeat off')!;
  const on = best.get('heartbeat on')!;
  process.stdout.write(
    [
      `date: ${new Date().toISOString()}`,
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, Linux ${version('uname', ['-r'])}, Node ${process.version}`,
      `${clients} clients x ${window} in flight, ${size}-byte binary messages, ${seconds} s, best of ${rounds}`,
      '| keepwire | echoes/s |',
      '| --- | --- |',
      `| websocket_heartbeat off | ${off.toFixed(0)} |`,
      `| websocket_heartbeat 1s | ${on.toFixed(0)} |`,
      `ratio on/off: ${(on / off).toFixed(3)}`,
      '',
    ].join('\n'),
  );
}

if (process.argv[2] === '--backend') runBackend();
else await main();
