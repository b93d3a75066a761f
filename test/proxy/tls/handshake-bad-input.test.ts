/**
 * What a TLS port does with clients that do not complete a handshake, and
 * session resumption: garbage on the port is closed (and logged), a client
 * stalling mid-handshake or before its first byte is closed at
 * ssl_handshake_timeout (and its worker_connections slot freed), and a
 * second connection resumes the first one's session by ticket and, with
 * tickets off, by the session cache.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { HttpLogRecord } from '../../../src/proxy/http/index.js';
import { okResponse, rawUpstream, startHttp } from '../http/fixtures.js';
import { freePort, makePki, type Pki } from './pki.js';

type Failure = Extract<HttpLogRecord, { msg: 'tls_handshake_failed' }>;

async function start(t: import('node:test').TestContext, pki: Pki, extra = '') {
  const leaf = pki.issue('h.test');
  const up = await rawUpstream((_req, respond) => respond(okResponse()));
  t.after(() => up.close());
  const port = await freePort();
  const proxy = await startHttp(
    pki.config(`http {
  upstream app { server 127.0.0.1:${up.port}; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${leaf.cert};
    ssl_certificate_key ${leaf.key};
    ${extra}
    location / { proxy_pass http://app; }
  }
}
`),
  );
  t.after(() => proxy.close());
  const failures = () => proxy.records.filter((r): r is Failure => r.msg === 'tls_handshake_failed');
  return { port, proxy, failures };
}

/** Resolves with the time the server took to close `socket` (bounded). */
function closedWithin(socket: Socket, ms: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

test('garbage on a TLS port: the connection is closed, the reason logged, no request made', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const { port, proxy, failures } = await start(t, pki);
  const s = netConnect(port, '127.0.0.1');
  // A handshake record type, then nonsense: OpenSSL refuses it.
  s.on('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0xff, 0xff])));
  await closedWithin(s, 10_000);
  const deadline = Date.now() + 5000;
  while (failures().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(failures()[0]?.reason, 'tls_error');
  assert.ok(failures()[0]!.detail.length > 0);
  assert.equal(proxy.requests().length, 0);
  assert.equal(proxy.runtime.sessionCount, 0);
  assert.equal(proxy.runtime.limiter.active, 0, 'the worker_connections slot is freed');
});

test('a client stalling mid-handshake, or before its first byte, is closed at ssl_handshake_timeout', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const { port, proxy, failures } = await start(t, pki, 'ssl_handshake_timeout 1s;');
  // Half a ClientHello record header, then silence.
  const mid = netConnect(port, '127.0.0.1');
  mid.on('connect', () => mid.write(Buffer.from([0x16, 0x03, 0x01])));
  const silent = netConnect(port, '127.0.0.1');
  const [a, b] = await Promise.all([closedWithin(mid, 10_000), closedWithin(silent, 10_000)]);
  for (const ms of [a, b]) assert.ok(ms >= 900, `closed after ${ms} ms, before the 1 s timeout`);
  const deadline = Date.now() + 5000;
  while (failures().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(
    failures().map((f) => f.reason),
    ['handshake_timeout', 'handshake_timeout'],
  );
  assert.equal(proxy.runtime.sessionCount, 0);
  assert.equal(proxy.runtime.limiter.active, 0, 'the worker_connections slots are freed');
});

/** Two TLS connections in a row, the second offering the first one's session. */
async function resumedOnSecond(port: number, ca: Buffer, version: 'TLSv1.2' | 'TLSv1.3'): Promise<boolean> {
  const once = (session?: Buffer) =>
    new Promise<{ socket: TLSSocket; session: Buffer | undefined }>((resolve, reject) => {
      const socket = tlsConnect({
        port,
        host: '127.0.0.1',
        servername: 'h.test',
        ca,
        minVersion: version,
        maxVersion: version,
        ...(session ? { session } : {}),
      });
      let got: Buffer | undefined;
      socket.on('session', (s: Buffer) => {
        got = s;
      });
      socket.on('error', reject);
      socket.on('secureConnect', () => {
        socket.write('GET / HTTP/1.1\r\nHost: h.test\r\n\r\n');
      });
      socket.on('data', () => {
        // The response arrived, so TLS 1.3 tickets (sent after the handshake) are in.
        resolve({ socket, session: got ?? socket.getSession() });
      });
    });
  const first = await once();
  first.socket.destroy();
  assert.ok(first.session, 'the server gave a session');
  const second = await once(first.session);
  const reused = second.socket.isSessionReused();
  second.socket.destroy();
  return reused;
}

test('session resumption: by ticket (TLS 1.2 and 1.3), and by the session cache with tickets off', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const ca = pki.read(pki.ca);
  const tickets = await start(t, pki);
  for (const v of ['TLSv1.2', 'TLSv1.3'] as const)
    assert.ok(await resumedOnSecond(tickets.port, ca, v), `${v} ticket`);
  const cache = await start(t, pki, 'ssl_session_tickets off; ssl_session_cache shared:SSL:1m;');
  assert.ok(await resumedOnSecond(cache.port, ca, 'TLSv1.2'), 'TLS 1.2 session ID');
  const none = await start(t, pki, 'ssl_session_tickets off;');
  assert.equal(
    await resumedOnSecond(none.port, ca, 'TLSv1.2'),
    false,
    'no tickets, no cache: full handshakes',
  );
});
