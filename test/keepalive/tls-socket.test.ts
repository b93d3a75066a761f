/**
 * Keepalive asked of a TLS socket goes on the TCP socket under it, and is
 * read back from it, on both ends of a real TLS connection on loopback: the
 * values are checked with getsockopt on the raw TCP sockets the test holds
 * (the server's 'connection' socket, the client socket passed to
 * tls.connect), and for a plain tls.connect() on a copy of the descriptor
 * taken through pidfd_getfd, as `doctor --pid` reads it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { type TestContext, test } from 'node:test';
import tls from 'node:tls';
import { readProcessSockets } from '../../src/doctor/sockets.js';
import {
  applyKeepaliveVia,
  type KeepaliveBackend,
  type KeepaliveState,
  nativeKeepaliveSupported,
  readKeepalive,
} from '../../src/index.js';
import { makePki } from '../proxy/tls/pki.js';

const backends: KeepaliveBackend[] = nativeKeepaliveSupported ? ['native', 'ffi'] : ['ffi'];
const clientAsk = { idle: 7, interval: 3, count: 4, userTimeout: 4000 };
const serverAsk = { idle: 11, interval: 5, count: 2, userTimeout: 6000 };
const state = (a: typeof clientAsk): KeepaliveState => ({ enabled: true, ...a });

interface TlsServer {
  port: number;
  /** The next accepted connection: the raw TCP socket and the TLS socket over it. */
  next(): Promise<{ raw: net.Socket; secure: tls.TLSSocket }>;
}

async function tlsServer(t: TestContext): Promise<TlsServer | undefined> {
  const pki = makePki(t);
  if (!pki) return undefined;
  const { cert, key } = pki.issue('localhost');
  const server = tls.createServer({ cert: pki.read(cert), key: pki.read(key) }, (s) => s.pipe(s));
  const raws: net.Socket[] = [];
  const secures: tls.TLSSocket[] = [];
  server.on('connection', (raw: net.Socket) => raws.push(raw));
  server.on('secureConnection', (s: tls.TLSSocket) => secures.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of [...raws, ...secures]) s.destroy();
    server.close();
  });
  let taken = 0;
  return {
    port: (server.address() as AddressInfo).port,
    async next() {
      while (secures.length <= taken) await once(server, 'secureConnection');
      const i = taken++;
      return { raw: raws[i]!, secure: secures[i]! };
    },
  };
}

/** The TLS connection carries data after keepalive was set (the right socket was touched, nothing broke). */
async function echoes(client: tls.TLSSocket): Promise<void> {
  client.write('ping');
  const [data] = (await once(client, 'data')) as [Buffer];
  assert.equal(data.toString(), 'ping');
}

for (const backend of backends) {
  test(`${backend}: tls.connect({ socket }) before connect and the server's TLSSocket — both raw TCP sockets hold the values`, async (t) => {
    const server = await tlsServer(t);
    if (!server) return;
    const raw = net.connect(server.port, '127.0.0.1');
    const client = tls.connect({ socket: raw, rejectUnauthorized: false });
    t.after(() => client.destroy());
    // Asked of the TLS socket while its TCP socket is still connecting.
    applyKeepaliveVia(client, clientAsk, backend);
    await once(client, 'secureConnect');
    const peer = await server.next();
    applyKeepaliveVia(peer.secure, serverAsk, backend);
    assert.deepEqual(readKeepalive(raw), state(clientAsk), 'client TCP socket');
    assert.deepEqual(readKeepalive(client), state(clientAsk), 'read through the TLS socket');
    assert.deepEqual(readKeepalive(peer.raw), state(serverAsk), 'server TCP socket');
    assert.deepEqual(readKeepalive(peer.secure), state(serverAsk), 'read through the server TLS socket');
    await echoes(client);
  });

  test(`${backend}: new TLSSocket(connected socket) — the wrapped TCP socket holds the values`, async (t) => {
    const server = await tlsServer(t);
    if (!server) return;
    const raw = net.connect(server.port, '127.0.0.1');
    await once(raw, 'connect');
    const client = tls.connect({ socket: raw, rejectUnauthorized: false });
    t.after(() => client.destroy());
    await once(client, 'secureConnect');
    applyKeepaliveVia(client, clientAsk, backend);
    assert.deepEqual(readKeepalive(raw), state(clientAsk));
    await echoes(client);
  });

  test(`${backend}: tls.connect() with no socket of its own — the descriptor, copied with pidfd_getfd, holds the values`, async (t) => {
    const server = await tlsServer(t);
    if (!server) return;
    const client = tls.connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false });
    t.after(() => client.destroy());
    applyKeepaliveVia(client, clientAsk, backend);
    await once(client, 'secureConnect');
    const peer = await server.next();
    applyKeepaliveVia(peer.secure, serverAsk, backend);
    assert.deepEqual(readKeepalive(client), state(clientAsk));
    const mine = readProcessSockets(process.pid);
    const local = `127.0.0.1:${client.localPort}`;
    const remote = `127.0.0.1:${server.port}`;
    const clientEnd = mine.find((s) => s.local === local && s.peer === remote);
    const serverEnd = mine.find((s) => s.local === remote && s.peer === local);
    assert.ok(clientEnd && serverEnd, `both ends of ${local} -> ${remote} among this process's sockets`);
    const seen = (s: typeof clientEnd) => ({
      enabled: s.keepalive,
      idle: s.idle,
      interval: s.interval,
      count: s.count,
      userTimeout: s.userTimeout,
    });
    assert.deepEqual(seen(clientEnd), state(clientAsk));
    assert.deepEqual(seen(serverEnd), state(serverAsk));
    await echoes(client);
  });
}
