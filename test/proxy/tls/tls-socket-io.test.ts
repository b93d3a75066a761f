/**
 * The proxy's socket I/O below the stream API (reads.ts, writes.ts) was
 * written for net.Socket handles; a TLSSocket's handle is OpenSSL's TLSWrap.
 * Reads work on it (both paths run here); writes take the public path (a
 * write request on a TLSWrap aborts Node). These tests run them on real TLS
 * connections (bytes in order and whole, both ways, megabytes at a time), and
 * the HTTP proxy's keep-alive connection with large bodies over TLS.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { test } from 'node:test';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { forceDataEvents, readsTo } from '../../../src/proxy/reads.js';
import { allSent, flushed, send } from '../../../src/proxy/writes.js';
import { rawUpstream, startHttp } from '../http/fixtures.js';
import { freePort, makePki } from './pki.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const path of ['onread', 'data events'] as const)
  test(`readsTo (${path}) and send on TLS sockets: every byte once and in order, both ways`, async (t) => {
    forceDataEvents(path === 'data events');
    t.after(() => forceDataEvents(false));
    const pki = makePki(t);
    if (!pki) return;
    const leaf = pki.issue('localhost');
    let accepted!: (s: TLSSocket) => void;
    const serverSide = new Promise<TLSSocket>((r) => {
      accepted = r;
    });
    // As the proxy does: a plain TCP listener, TLS wrapped over the accepted socket.
    const server = createServer({ pauseOnConnect: true }, (raw) => {
      const s = new TLSSocket(raw, { isServer: true, cert: pki.read(leaf.cert), key: pki.read(leaf.key) });
      s.on('secure', () => accepted(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const client = tlsConnect({
      port: (server.address() as AddressInfo).port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: pki.read(pki.ca),
    });
    client.on('error', () => {});
    t.after(() => client.destroy());
    const s = await serverSide;
    s.on('error', () => {});

    // Client → server through readsTo.
    const up = randomBytes(3 * 1024 * 1024);
    const got: Buffer[] = [];
    let n = 0;
    const read = new Promise<void>((resolve) =>
      readsTo(s, (c: Buffer) => {
        got.push(c);
        n += c.length;
        if (n >= up.length) resolve();
      }),
    );
    s.resume();
    client.write(up);
    await read;
    assert.equal(sha(Buffer.concat(got)), sha(up));

    // Server → client through send, in pieces, then flushed.
    const down = randomBytes(2 * 1024 * 1024);
    const back: Buffer[] = [];
    let m = 0;
    const received = new Promise<void>((resolve) =>
      client.on('data', (c: Buffer) => {
        back.push(c);
        m += c.length;
        if (m >= down.length) resolve();
      }),
    );
    for (let at = 0; at < down.length; at += 256 * 1024) send(s, down.subarray(at, at + 256 * 1024));
    await new Promise<void>((resolve) => flushed(s, resolve));
    assert.ok(allSent(s));
    await received;
    assert.equal(sha(Buffer.concat(back)), sha(down));
  });

test('HTTPS keep-alive: large request and response bodies over one TLS connection, three requests in a row', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const leaf = pki.issue('big.test');
  const body = randomBytes(1024 * 1024);
  const up = await rawUpstream((req, respond) =>
    respond(
      Buffer.concat([
        Buffer.from(
          `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-Req-Sha: ${sha(req.body)}\r\n\r\n`,
        ),
        body,
      ]),
    ),
  );
  t.after(() => up.close());
  const port = await freePort();
  const proxy = await startHttp(
    pki.config(`http {
  upstream app { server 127.0.0.1:${up.port}; keepalive 2; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${leaf.cert};
    ssl_certificate_key ${leaf.key};
    client_max_body_size 4m;
    location / { proxy_pass http://app; proxy_http_version 1.1; }
  }
}
`),
  );
  t.after(() => proxy.close());
  const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'big.test', ca: pki.read(pki.ca) });
  t.after(() => socket.destroy());
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
  });
  await new Promise<void>((r, j) => socket.once('secureConnect', r).once('error', j));
  for (let i = 0; i < 3; i++) {
    const reqBody = randomBytes(512 * 1024 + i);
    socket.write(`POST /${i} HTTP/1.1\r\nHost: big.test\r\nContent-Length: ${reqBody.length}\r\n\r\n`);
    socket.write(reqBody);
    const deadline = Date.now() + 20_000;
    let head = '';
    while (Date.now() < deadline) {
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0 && buf.length >= end + 4 + body.length) {
        head = buf.subarray(0, end).toString('latin1');
        assert.equal(sha(buf.subarray(end + 4, end + 4 + body.length)), sha(body));
        buf = buf.subarray(end + 4 + body.length);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.match(head, /^HTTP\/1\.1 200 OK/);
    assert.match(head, new RegExp(`X-Req-Sha: ${sha(reqBody)}`));
    assert.match(head, /Connection: keep-alive/);
  }
  assert.equal(proxy.requests().length, 3);
});
