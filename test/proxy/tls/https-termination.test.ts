/**
 * `listen ... ssl`: keepwire terminates TLS for HTTP on Node's tls (OpenSSL).
 * Real clients (curl and Node's tls/https) over TLS 1.2 and 1.3, SNI choosing
 * the server block, the default server for unknown names, keep-alive HTTP/1.1
 * over one TLS connection, X-Forwarded-Proto https upstream, and nginx's 400
 * for a plain HTTP request on the TLS port.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { okResponse, rawUpstream, startHttp } from '../http/fixtures.js';
import { freePort, makePki, type Pki } from './pki.js';

const run = promisify(execFile);

function conf(pki: Pki, upstreamPort: number, port: number, extra = ''): string {
  const a = pki.issue('a.test');
  const b = pki.issue('b.test');
  return `worker_shutdown_timeout 2s;
http {
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 4; }
  proxy_http_version 1.1;
  ${extra}
  server {
    listen 127.0.0.1:${port} ssl;
    server_name a.test;
    ssl_certificate ${a.cert};
    ssl_certificate_key ${a.key};
    location / { proxy_pass http://app; proxy_set_header X-Server a; }
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name b.test;
    ssl_certificate ${b.cert};
    ssl_certificate_key ${b.key};
    location / { proxy_pass http://app; proxy_set_header X-Server b; }
  }
}
`;
}

/** Sends `raw` over TLS and reads until the peer closes or `until` matches. */
function tlsExchange(
  port: number,
  opts: {
    servername?: string;
    ca: Buffer;
    maxVersion?: 'TLSv1.2' | 'TLSv1.3';
    minVersion?: 'TLSv1.2' | 'TLSv1.3';
  },
  raw: string,
  until: (text: string) => boolean,
): Promise<{ text: string; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...opts, ALPNProtocols: ['http/1.1'] });
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no answer; got ${JSON.stringify(text)}`)), 10_000);
    socket.on('secureConnect', () => socket.write(raw));
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (until(text)) {
        clearTimeout(timer);
        resolve({ text, socket });
      }
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      resolve({ text, socket });
    });
  });
}

const twoResponses = (t: string) => (t.match(/HTTP\/1\.1 200/g) ?? []).length >= 2 && t.endsWith('ok');

test('HTTPS over TLS 1.2 and 1.3: SNI picks the server block, keep-alive requests share one TLS connection', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const up = await rawUpstream((req, respond) =>
    respond(
      okResponse(
        'ok',
        `X-Seen-Proto: ${req.headers['x-forwarded-proto']}\r\nX-Seen-Server: ${req.headers['x-server']}\r\n`,
      ),
    ),
  );
  t.after(() => up.close());
  const port = await freePort();
  const proxy = await startHttp(pki.config(conf(pki, up.port, port)));
  t.after(() => proxy.close());
  const ca = pki.read(pki.ca);

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    for (const name of ['a.test', 'b.test']) {
      const req = `GET /x HTTP/1.1\r\nHost: ${name}\r\n\r\n`;
      const { text, socket } = await tlsExchange(
        port,
        { servername: name, ca, minVersion: version, maxVersion: version },
        req + req,
        twoResponses,
      );
      // The certificate of the server named by SNI (verified against the CA, name included).
      assert.equal(socket.getProtocol(), version);
      assert.equal(socket.alpnProtocol, 'http/1.1');
      assert.equal(socket.getPeerCertificate().subject.CN, name);
      assert.equal((text.match(/X-Seen-Proto: https/g) ?? []).length, 2, text);
      assert.equal((text.match(new RegExp(`X-Seen-Server: ${name[0]}`, 'g')) ?? []).length, 2, text);
      socket.destroy();
    }
  }
});

test('an unknown SNI name gets the default server (the first for the address) and its certificate', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const up = await rawUpstream((req, respond) =>
    respond(okResponse('ok', `X-Seen-Server: ${req.headers['x-server']}\r\n`)),
  );
  t.after(() => up.close());
  const port = await freePort();
  const proxy = await startHttp(pki.config(conf(pki, up.port, port)));
  t.after(() => proxy.close());
  const { text, socket } = await tlsExchange(
    port,
    { servername: 'c.test', ca: pki.read(pki.ca), checkServerIdentity: () => undefined } as never,
    'GET / HTTP/1.1\r\nHost: a.test\r\n\r\n',
    (s) => s.endsWith('ok'),
  );
  assert.equal(socket.getPeerCertificate().subject.CN, 'a.test');
  assert.match(text, /X-Seen-Server: a/);
  socket.destroy();
});

test('curl over HTTPS, TLS 1.2 and 1.3, verifying the certificate against the CA', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const up = await rawUpstream((req, respond) =>
    respond(okResponse(`proto=${req.headers['x-forwarded-proto']}`)),
  );
  t.after(() => up.close());
  const port = await freePort();
  const proxy = await startHttp(pki.config(conf(pki, up.port, port)));
  t.after(() => proxy.close());
  for (const [flag, max] of [
    ['--tlsv1.2', '--tls-max'],
    ['--tlsv1.3', '--tls-max'],
  ] as const) {
    const version = flag === '--tlsv1.2' ? '1.2' : '1.3';
    const { stdout }: { stdout: string } = await run(
      'curl',
      [
        '-sS',
        '--cacert',
        pki.ca,
        flag,
        max,
        version,
        '--resolve',
        `b.test:${port}:127.0.0.1`,
        '-w',
        ' %{http_version} %{ssl_verify_result}',
        `https://b.test:${port}/`,
      ],
      { timeout: 20_000 },
    );
    assert.equal(stdout, 'proto=https 1.1 0');
  }
});

test('a plain HTTP request on the TLS port gets nginx\'s 400 "The plain HTTP request was sent to HTTPS port" in clear text, then close', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const up = await rawUpstream((_req, respond) => respond(okResponse()));
  t.after(() => up.close());
  const port = await freePort();
  const proxy = await startHttp(pki.config(conf(pki, up.port, port)));
  t.after(() => proxy.close());
  const text = await new Promise<string>((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n'));
    let got = '';
    const timer = setTimeout(() => reject(new Error(`hung; got ${JSON.stringify(got)}`)), 10_000);
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on('error', () => {});
  });
  assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(text, /Connection: close\r\n/);
  assert.match(text, /The plain HTTP request was sent to HTTPS port/);
  assert.equal(up.accepted, 0, 'nothing was proxied');
  const rec = await proxy.waitForRequests(1);
  assert.equal(rec[0]!.status, 400);
});
