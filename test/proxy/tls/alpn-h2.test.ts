/**
 * `listen ... ssl` with `http2 on`: ALPN offers `h2` first, and an h2
 * client is served HTTP/2 over TLS through the same path as h2c (its
 * connection starts with the HTTP/2 preface, which the HTTP/1.x code hands
 * to the HTTP/2 side). A client that offers only `http/1.1` on the same
 * port is served HTTP/1.1; without `http2 on` an h2 client gets `http/1.1`.
 */
import assert from 'node:assert/strict';
import { connect as h2Connect } from 'node:http2';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { startHttp } from '../http/fixtures.js';
import { freePort, makePki, type Pki } from './pki.js';

function conf(pki: Pki, port: number, http2: boolean): string {
  const a = pki.issue('a.test');
  return `worker_shutdown_timeout 2s;
http {
  server {
    listen 127.0.0.1:${port} ssl;
    server_name a.test;
    ${http2 ? 'http2 on;' : ''}
    ssl_certificate ${a.cert};
    ssl_certificate_key ${a.key};
    location / { return 200 "hello over tls\\n"; }
  }
}
`;
}

/** The protocol ALPN settled on when a client offers `offer`. */
function alpnOf(port: number, ca: Buffer, offer: string[]): Promise<string | false | null> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'a.test', ca, ALPNProtocols: offer });
    socket.on('error', reject);
    socket.on('secureConnect', () => {
      resolve(socket.alpnProtocol);
      socket.destroy();
    });
  });
}

/** One HTTP/2 GET over TLS: status, body and the ALPN protocol of the session. */
function h2Get(
  port: number,
  ca: Buffer,
): Promise<{ status: number; body: string; alpn: string | undefined }> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`https://127.0.0.1:${port}`, { ca, servername: 'a.test' });
    session.on('error', reject);
    const req = session.request({ ':path': '/x', ':authority': 'a.test' });
    let status = 0;
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('error', reject);
    req.on('end', () => {
      resolve({ status, body, alpn: session.alpnProtocol });
      session.close();
    });
    req.end();
  });
}

test('ssl + http2 on: ALPN h2 first, HTTP/2 served over TLS; http/1.1 still served on the port', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const port = await freePort();
  const proxy = await startHttp(pki.config(conf(pki, port, true)));
  t.after(() => proxy.close());
  const ca = pki.read(pki.ca);
  assert.equal(await alpnOf(port, ca, ['h2', 'http/1.1']), 'h2');
  assert.equal(await alpnOf(port, ca, ['http/1.1']), 'http/1.1');
  const r = await h2Get(port, ca);
  assert.deepEqual(r, { status: 200, body: 'hello over tls\n', alpn: 'h2' });
  const [record] = await proxy.waitForRequests(1);
  assert.equal(record!.protocol, 'HTTP/2.0');
  assert.equal(record!.status, 200);
});

test('ssl without http2 on: an h2 client is answered with http/1.1 by ALPN', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const port = await freePort();
  const proxy = await startHttp(pki.config(conf(pki, port, false)));
  t.after(() => proxy.close());
  assert.equal(await alpnOf(port, pki.read(pki.ca), ['h2', 'http/1.1']), 'http/1.1');
});
