/**
 * `proxy_pass https://`: keepwire speaks TLS to the upstream. Pooled TLS
 * connections are reused as plain ones (and the stale-connection retry holds
 * on them), verification against proxy_ssl_trusted_certificate and
 * proxy_ssl_name, a verify failure is a 502 with the reason logged, a client
 * certificate reaches an upstream that requires one, and a new connection
 * resumes the last session to the server.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { startHttp } from '../http/fixtures.js';
import { freePort, makePki, type Pki } from './pki.js';

interface Origin {
  server: HttpsServer;
  port: number;
  /** TLS connections accepted, and how many of them resumed a session. */
  connections: number;
  resumed: number;
  clientNames: string[];
}

async function origin(
  pki: Pki,
  opts: { requireClientCert?: boolean; dropSecondRequest?: boolean; closeEach?: boolean } = {},
): Promise<Origin> {
  const leaf = pki.issue('backend.test');
  const o: Origin = { server: undefined as never, port: 0, connections: 0, resumed: 0, clientNames: [] };
  const perSocket = new WeakMap<object, number>();
  o.server = createHttpsServer(
    {
      cert: pki.read(leaf.cert),
      key: pki.read(leaf.key),
      ...(opts.requireClientCert
        ? { requestCert: true, rejectUnauthorized: true, ca: pki.read(pki.ca) }
        : {}),
    },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const n = (perSocket.get(socket) ?? 0) + 1;
      perSocket.set(socket, n);
      if (opts.dropSecondRequest && n === 2) {
        // A server that dropped the kept-alive connection just as the request came.
        socket.destroy();
        return;
      }
      const peer = socket.getPeerCertificate();
      if (peer?.subject) o.clientNames.push(peer.subject.CN as string);
      res.setHeader('X-Proto', String(req.headers['x-forwarded-proto']));
      if (opts.closeEach) res.setHeader('Connection', 'close');
      res.end(`hello ${n}`);
    },
  );
  o.server.on('secureConnection', (s: TLSSocket) => {
    o.connections++;
    if (s.isSessionReused()) o.resumed++;
  });
  await new Promise<void>((r) => o.server.listen(0, '127.0.0.1', r));
  o.port = (o.server.address() as AddressInfo).port;
  return o;
}

function get(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ port, host: '127.0.0.1', path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.setTimeout(15_000, () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end();
  });
}

async function proxyTo(pki: Pki, o: Origin, locationExtra: string) {
  const port = await freePort();
  const proxy = await startHttp(
    pki.config(`http {
  upstream backend.test { server 127.0.0.1:${o.port} max_fails=0; keepalive 4; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass https://backend.test;
      proxy_http_version 1.1;
      ${locationExtra}
    }
  }
}
`),
  );
  return proxy;
}

test('https upstream verified against the trusted CA: keep-alive TLS connections are reused', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const o = await origin(pki);
  t.after(() => o.server.close());
  const proxy = await proxyTo(pki, o, `proxy_ssl_verify on; proxy_ssl_trusted_certificate ca.pem;`);
  t.after(() => proxy.close());
  for (let i = 1; i <= 3; i++) assert.deepEqual(await get(proxy.port), { status: 200, body: `hello ${i}` });
  assert.equal(o.connections, 1, 'one TLS connection served the three requests');
});

test('proxy_ssl_verify on with a certificate from another CA: 502, the verify failure logged', async (t) => {
  const pki = makePki(t);
  const other = makePki(t);
  if (!pki || !other) return;
  const o = await origin(other);
  t.after(() => o.server.close());
  const proxy = await proxyTo(pki, o, `proxy_ssl_verify on; proxy_ssl_trusted_certificate ${pki.ca};`);
  t.after(() => proxy.close());
  assert.equal((await get(proxy.port)).status, 502);
  const [rec] = await proxy.waitForRequests(1);
  assert.match(rec!.detail ?? '', /TLS handshake failed: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  // A wrong name fails too (the certificate is for backend.test).
  const named = await proxyTo(
    other,
    o,
    `proxy_ssl_verify on; proxy_ssl_trusted_certificate ca.pem; proxy_ssl_name db.test;`,
  );
  t.after(() => named.close());
  assert.equal((await get(named.port)).status, 502);
  const [rec2] = await named.waitForRequests(1);
  assert.match(rec2!.detail ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/);
  // Off (the default, as nginx): the same upstream is accepted unverified.
  const lax = await proxyTo(pki, o, '');
  t.after(() => lax.close());
  assert.equal((await get(lax.port)).status, 200);
});

test('a client certificate reaches an upstream that requires one; without it the upstream refuses (502)', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const client = pki.issue('keepwire-client', { client: true });
  const o = await origin(pki, { requireClientCert: true });
  t.after(() => o.server.close());
  const withCert = await proxyTo(
    pki,
    o,
    `proxy_ssl_certificate ${client.cert}; proxy_ssl_certificate_key ${client.key}; proxy_ssl_verify on; proxy_ssl_trusted_certificate ca.pem;`,
  );
  t.after(() => withCert.close());
  assert.equal((await get(withCert.port)).status, 200);
  assert.deepEqual(o.clientNames, ['keepwire-client']);
  const without = await proxyTo(pki, o, '');
  t.after(() => without.close());
  assert.equal((await get(without.port)).status, 502);
});

test('proxy_ssl_session_reuse: a new connection to the server resumes the last session', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const o = await origin(pki, { closeEach: true });
  t.after(() => o.server.close());
  const proxy = await proxyTo(pki, o, '');
  t.after(() => proxy.close());
  for (let i = 0; i < 3; i++) assert.equal((await get(proxy.port)).status, 200);
  assert.equal(o.connections, 3);
  assert.ok(o.resumed >= 2, `resumed ${o.resumed} of 3`);
  const off = await proxyTo(pki, o, 'proxy_ssl_session_reuse off;');
  t.after(() => off.close());
  const before = o.resumed;
  for (let i = 0; i < 2; i++) assert.equal((await get(off.port)).status, 200);
  assert.equal(o.resumed, before, 'no resumption with proxy_ssl_session_reuse off');
});

test('stale-connection retry on a pooled TLS connection: the request is repeated on a fresh one', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const o = await origin(pki, { dropSecondRequest: true });
  t.after(() => o.server.close());
  const proxy = await proxyTo(pki, o, '');
  t.after(() => proxy.close());
  assert.deepEqual(await get(proxy.port), { status: 200, body: 'hello 1' });
  // Reuses the cached connection; the origin drops it: one free retry on a new connection.
  assert.deepEqual(await get(proxy.port), { status: 200, body: 'hello 1' });
  assert.equal(o.connections, 2);
  assert.deepEqual(
    proxy.retries().map((r) => r.kind),
    ['stale_connection'],
  );
});
