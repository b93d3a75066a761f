/**
 * A process holding TCP sockets with known keepalive settings, for the live
 * socket tests: `node socket-holder.js HOST`. It listens on HOST, connects to
 * itself once per setting below, and prints one JSON line describing the
 * client sockets (port → settings), then idles until killed.
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import { applyKeepalive } from '../../src/keepalive/socket.js';

// Non-dumpable, so that only a holder of CAP_SYS_PTRACE may duplicate this
// process's descriptors: the "no ptrace rights" test drops that capability.
const koffi = createRequire(import.meta.url)('koffi');
const prctl = koffi
  .load('libc.so.6')
  .func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)');
const PR_SET_DUMPABLE = 4;
if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) !== 0) throw new Error('prctl(PR_SET_DUMPABLE, 0) failed');

export const HELD = [
  { name: 'none' },
  { name: 'short', keepalive: { idle: 1, interval: 1, count: 3, userTimeout: 5000 } },
  { name: 'long', keepalive: { idle: 500, interval: 20, count: 4 } },
] as const;

const host = process.argv[2] ?? '127.0.0.1';
const accepted: net.Socket[] = [];
const server = net.createServer((s) => accepted.push(s));
server.listen(0, host, async () => {
  const port = (server.address() as net.AddressInfo).port;
  const out: { name: string; localPort: number }[] = [];
  for (const h of HELD) {
    const socket = net.connect(port, host);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    if ('keepalive' in h) applyKeepalive(socket, h.keepalive);
    out.push({ name: h.name, localPort: socket.localPort! });
    (globalThis as { held?: net.Socket[] }).held = [
      ...((globalThis as { held?: net.Socket[] }).held ?? []),
      socket,
    ];
  }
  process.stdout.write(`${JSON.stringify({ pid: process.pid, port, sockets: out })}\n`);
});
