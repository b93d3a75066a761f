/**
 * so_keepalive and proxy_socket_keepalive reach the TCP sockets under TLS on
 * both legs: read back with getsockopt (readKeepalive finds the TCP socket
 * under a TLSSocket) from the client connection of an `ssl` listener and from
 * a cached `proxy_pass https://` connection.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { readKeepalive } from '../../../src/keepalive/socket.js';
import type { UpstreamConnection } from '../../../src/proxy/http/transport.js';
import { startHttp } from '../http/fixtures.js';
import { freePort, makePki } from './pki.js';

test('keepalive on the TCP sockets under TLS, both legs, read back with getsockopt', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const front = pki.issue('front.test');
  const back = pki.issue('backend.test');
  const origin = createHttpsServer({ cert: pki.read(back.cert), key: pki.read(back.key) }, (_req, res) =>
    res.end('ok'),
  );
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  t.after(() => origin.close());
  const port = await freePort();
  const proxy = await startHttp(
    pki.config(`http {
  upstream backend.test { server 127.0.0.1:${(origin.address() as AddressInfo).port}; keepalive 2; }
  server {
    listen 127.0.0.1:${port} ssl so_keepalive=7s:3s:4;
    ssl_certificate ${front.cert};
    ssl_certificate_key ${front.key};
    location / {
      proxy_pass https://backend.test;
      proxy_http_version 1.1;
      proxy_socket_keepalive 11s:2s:5;
    }
  }
}
`),
  );
  t.after(() => proxy.close());
  const client = tlsConnect({ port, host: '127.0.0.1', servername: 'front.test', ca: pki.read(pki.ca) });
  t.after(() => client.destroy());
  await new Promise<void>((resolve, reject) => {
    client.on('error', reject);
    client.on('secureConnect', () => client.write('GET / HTTP/1.1\r\nHost: front.test\r\n\r\n'));
    client.on('data', (d: Buffer) => {
      if (d.toString().endsWith('ok')) resolve();
    });
  });
  const gen = proxy.runtime.httpGeneration!;
  const [conn] = [...gen.frontends[0]!.connections];
  assert.equal((conn!.socket as { encrypted?: boolean }).encrypted, true, 'the client leg is a TLSSocket');
  const c = readKeepalive(conn!.socket);
  assert.deepEqual([c.enabled, c.idle, c.interval, c.count], [true, 7, 3, 4]);
  // The cached upstream connection (the response is complete, so it is idle in the pool).
  const idle = (gen.pools[0] as unknown as { idle: Map<unknown, UpstreamConnection[]> }).idle;
  const deadline = Date.now() + 5000;
  while ([...idle.values()].flat().length === 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  const upstream = [...idle.values()].flat()[0]!;
  assert.equal(
    (upstream.socket as { encrypted?: boolean }).encrypted,
    true,
    'the upstream leg is a TLSSocket',
  );
  const u = readKeepalive(upstream.socket);
  assert.deepEqual([u.enabled, u.idle, u.interval, u.count], [true, 11, 2, 5]);
});
