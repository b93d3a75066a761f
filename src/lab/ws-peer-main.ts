/**
 * A WebSocket peer (the `ws` package) for the lab's `websocket` scenario,
 * run inside a namespace and reporting what it sees as JSON lines on stdout
 * with wall-clock timestamps:
 *
 *   ws-peer-main server PORT [--keepalive-ms N]
 *     answers every message `up` with `down`; reports connections, messages, pongs, closes.
 *   ws-peer-main client URL --idle-ms N [--keepalive-ms N] [--ping-ms N]
 *     connects, stays idle for N ms (pinging every --ping-ms when given: the
 *     application's own heartbeat), then sends `up` and waits for `down`.
 *
 * `--keepalive-ms` turns TCP keepalive on (probes after that much idle,
 * then every second on Node 20) on the peer's socket.
 */
import { connect, type Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

const out = (ev: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ ev, at: Date.now(), ...fields })}\n`);

function option(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : Number(process.argv[i + 1]);
}

const [role, where] = process.argv.slice(2);
const keepaliveMs = option('keepalive-ms');

if (role === 'server') {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(where) });
  wss.on('listening', () => out('listening'));
  wss.on('connection', (ws, req) => {
    if (keepaliveMs !== undefined) req.socket.setKeepAlive(true, keepaliveMs);
    out('connection');
    ws.on('pong', () => out('pong'));
    ws.on('ping', () => out('ping'));
    ws.on('message', (data) => {
      out('message', { data: data.toString() });
      if (data.toString() === 'up') ws.send('down');
    });
    ws.on('close', (code) => out('close', { code }));
    ws.on('error', (e: NodeJS.ErrnoException) => out('error', { code: e.code ?? e.message }));
  });
} else if (role === 'client') {
  const idleMs = option('idle-ms') ?? 0;
  const pingMs = option('ping-ms');
  const ws = new WebSocket(where!, {
    createConnection: (opts: { host?: string; port?: number }) => {
      const socket: Socket = connect({ host: opts.host ?? '127.0.0.1', port: Number(opts.port) });
      if (keepaliveMs !== undefined) socket.setKeepAlive(true, keepaliveMs);
      // ws closes with 1006 on a socket error without saying which: the code is the evidence.
      socket.on('error', (e: NodeJS.ErrnoException) => out('error', { code: e.code ?? e.message }));
      return socket;
    },
  } as ConstructorParameters<typeof WebSocket>[2]);
  let pinger: NodeJS.Timeout | undefined;
  ws.on('open', () => {
    out('open');
    if (pingMs !== undefined) pinger = setInterval(() => ws.ping(), pingMs);
    setTimeout(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      out('send', { data: 'up' });
      ws.send('up');
    }, idleMs);
  });
  ws.on('pong', () => out('pong'));
  ws.on('message', (data) => {
    out('message', { data: data.toString() });
    clearInterval(pinger);
    ws.close(1000);
  });
  ws.on('close', (code) => {
    clearInterval(pinger);
    out('close', { code });
    process.exit(0);
  });
  ws.on('error', (e: NodeJS.ErrnoException) => out('error', { code: e.code ?? e.message }));
} else {
  process.stderr.write('usage: ws-peer-main server PORT | client URL --idle-ms N\n');
  process.exit(2);
}
