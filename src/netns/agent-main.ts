/**
 * The socket agent: a tiny process that holds TCP sockets inside a network
 * namespace on behalf of a test or lab scenario in another namespace.
 *
 * Protocol: one JSON command per stdin line, one JSON event per stdout line.
 * Every event carries `t`, milliseconds since the agent started, so a
 * controller can build timelines from the agent's own clock.
 *
 * Commands:
 *   {"op":"listen","host":H,"port":P,"keepalive":{...}?,"echo":true?,"delayMs":N?,"reply":S?}
 *   {"op":"connect","id":I,"host":H,"port":P,"keepalive":{...}?,"keepaliveAfterConnect":bool?}
 *   {"op":"send","id":I,"data":S}       {"op":"end","id":I}       {"op":"destroy","id":I}
 *   {"op":"read-keepalive","id":I}      {"op":"ping","id":I}      {"op":"exit"}
 * Events: ready, listening, accepted, connected, data, end, error, close, keepalive, pong, fatal.
 */
import net from 'node:net';
import { createInterface } from 'node:readline';
import { applyKeepalive, type KeepaliveOptions, readKeepalive } from '../keepalive/socket.js';
import { type HttpCommand, handleHttp } from './agent-http.js';

const start = performance.now();
const sockets = new Map<string, net.Socket>();
let accepted = 0;

function emit(event: Record<string, unknown>): void {
  // `t` is the agent's own clock; `at` is wall-clock ms, comparable across the
  // processes of one machine (tcpdump's -tt, other agents) for timelines.
  const now = performance.now();
  process.stdout.write(
    `${JSON.stringify({ ...event, t: Math.round(now - start), at: Math.round((performance.timeOrigin + now) * 10) / 10 })}\n`,
  );
}

function watch(id: string, socket: net.Socket): void {
  sockets.set(id, socket);
  socket.setEncoding('utf8');
  socket.on('data', (data: string) => emit({ ev: 'data', id, data }));
  socket.on('end', () => emit({ ev: 'end', id }));
  socket.on('error', (error: NodeJS.ErrnoException) =>
    emit({ ev: 'error', id, code: error.code, message: error.message }),
  );
  socket.on('close', () => emit({ ev: 'close', id }));
}

interface Command {
  op: string;
  id?: string;
  host?: string;
  port?: number;
  keepalive?: KeepaliveOptions;
  keepaliveAfterConnect?: boolean;
  echo?: boolean;
  delayMs?: number;
  reply?: string;
  data?: string;
}

function handle(cmd: Command): void {
  const id = cmd.id ?? '';
  switch (cmd.op) {
    case 'listen': {
      const server = net.createServer({ allowHalfOpen: false }, (socket) => {
        const sid = `s${++accepted}`;
        if (cmd.keepalive) applyKeepalive(socket, cmd.keepalive);
        emit({ ev: 'accepted', id: sid, remote: `${socket.remoteAddress}:${socket.remotePort}` });
        watch(sid, socket);
        socket.on('data', (data: string) => {
          // A slow backend: answer each request after delayMs, as the incident's app does.
          const answer = () => {
            if (socket.destroyed) return;
            if (cmd.reply !== undefined) socket.write(cmd.reply);
            else if (cmd.echo) socket.write(data);
          };
          if (cmd.delayMs) setTimeout(answer, cmd.delayMs);
          else answer();
        });
      });
      server.on('error', (error: NodeJS.ErrnoException) =>
        emit({ ev: 'fatal', code: error.code, message: error.message }),
      );
      server.listen(cmd.port ?? 0, cmd.host ?? '0.0.0.0', () => {
        emit({ ev: 'listening', port: (server.address() as net.AddressInfo).port });
      });
      return;
    }
    case 'connect': {
      const socket = net.connect(cmd.port!, cmd.host!);
      watch(id, socket);
      if (cmd.keepalive && !cmd.keepaliveAfterConnect)
        emit({ ev: 'keepalive-backend', id, backend: applyKeepalive(socket, cmd.keepalive) });
      socket.once('connect', () => {
        if (cmd.keepalive && cmd.keepaliveAfterConnect) applyKeepalive(socket, cmd.keepalive);
        emit({ ev: 'connected', id, local: `${socket.localAddress}:${socket.localPort}` });
      });
      return;
    }
    case 'send':
      sockets.get(id)?.write(cmd.data ?? '');
      return;
    case 'end':
      sockets.get(id)?.end();
      return;
    case 'destroy':
      sockets.get(id)?.destroy();
      return;
    case 'read-keepalive': {
      const socket = sockets.get(id);
      if (socket) emit({ ev: 'keepalive', id, state: readKeepalive(socket) });
      return;
    }
    case 'ping':
      emit({ ev: 'pong', id });
      return;
    case 'exit':
      process.exit(0);
      return;
    default:
      if (!handleHttp(cmd as HttpCommand, emit)) emit({ ev: 'fatal', message: `unknown op ${cmd.op}` });
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  try {
    handle(JSON.parse(line) as Command);
  } catch (error) {
    emit({ ev: 'fatal', message: (error as Error).message });
  }
});
// The controller going away ends the agent: never leave a process behind.
process.stdin.on('end', () => process.exit(0));
emit({ ev: 'ready', pid: process.pid });
