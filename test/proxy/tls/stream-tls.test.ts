/**
 * TLS in stream servers: `listen ... ssl` terminates TLS and relays the
 * plaintext to the upstream; `proxy_ssl on` speaks TLS to the upstream,
 * verified under proxy_ssl_verify (a failure ends the session as a failed
 * connect, its reason logged). Keepalive reaches the TCP sockets under TLS.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, createServer, connect as netConnect, type Socket } from 'node:net';
import { test } from 'node:test';
import { type ConnectionOptions, createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import type { Config } from '../../../src/config/model.js';
import { readKeepalive } from '../../../src/keepalive/socket.js';
import type { SessionRecord } from '../../../src/proxy/stream.js';
import { Runtime } from '../../../src/serve/index.js';
import { freePort, makePki, type Pki } from './pki.js';

async function start(t: import('node:test').TestContext, config: Config) {
  const records: SessionRecord[] = [];
  const runtime = new Runtime({ sessionLog: (r) => records.push(r) });
  await runtime.apply(config);
  t.after(() => runtime.shutdown(0));
  return { runtime, records };
}

function echoOnce(socket: Socket): void {
  socket.on('data', (d) => socket.write(d));
  socket.on('end', () => socket.end());
  socket.on('error', () => {});
}

function exchange(connectOpts: ConnectionOptions, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(connectOpts);
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no echo: ${JSON.stringify(got)}`)), 10_000);
    s.on('secureConnect', () => s.write(message));
    s.on('data', (d) => {
      got += d;
      if (got.length >= message.length) {
        clearTimeout(timer);
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

test('stream listen ... ssl: TLS terminated, plaintext relayed, keepalive on the TCP socket under TLS', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const leaf = pki.issue('db.test');
  const accepted: Socket[] = [];
  const plain = createServer((s) => {
    accepted.push(s);
    echoOnce(s);
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  t.after(() => plain.close());
  const port = await freePort();
  const { runtime } = await start(
    t,
    pki.config(`stream {
  server {
    listen 127.0.0.1:${port} ssl so_keepalive=9s:4s:3;
    ssl_certificate ${leaf.cert};
    ssl_certificate_key ${leaf.key};
    proxy_pass 127.0.0.1:${(plain.address() as AddressInfo).port};
  }
}
`),
  );
  const sessions = () => runtime.liveSessions();
  const ca = pki.read(pki.ca);
  const s = tlsConnect({ port, host: '127.0.0.1', servername: 'db.test', ca });
  t.after(() => s.destroy());
  await new Promise<void>((r, j) => s.once('secureConnect', r).once('error', j));
  s.write('ping');
  const echoed = await new Promise<string>((r) => s.once('data', (d) => r(String(d))));
  assert.equal(echoed, 'ping');
  assert.equal(s.getPeerCertificate().subject.CN, 'db.test');
  const [session] = sessions();
  assert.equal((session!.client as { encrypted?: boolean }).encrypted, true);
  const k = readKeepalive(session!.client);
  assert.deepEqual([k.enabled, k.idle, k.interval, k.count], [true, 9, 4, 3]);
  assert.equal(await exchange({ port, host: '127.0.0.1', servername: 'db.test', ca }, 'second'), 'second');
});

async function tlsEcho(pki: Pki, name: string) {
  const leaf = pki.issue(name);
  const server = createTlsServer({ cert: pki.read(leaf.cert), key: pki.read(leaf.key) }, echoOnce);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

test('stream proxy_ssl on: TLS to the upstream, verified; a verify failure is a failed connect with its reason', async (t) => {
  const pki = makePki(t);
  const other = makePki(t);
  if (!pki || !other) return;
  const good = await tlsEcho(pki, 'db.test');
  const bad = await tlsEcho(other, 'db.test');
  t.after(() => {
    good.close();
    bad.close();
  });
  const [p1, p2] = [await freePort(), await freePort()];
  const { records } = await start(
    t,
    pki.config(`stream {
  proxy_ssl on;
  proxy_ssl_verify on;
  proxy_ssl_trusted_certificate ca.pem;
  proxy_ssl_name db.test;
  proxy_socket_keepalive 12s:5s:2;
  server { listen 127.0.0.1:${p1}; proxy_pass 127.0.0.1:${(good.address() as AddressInfo).port}; }
  server { listen 127.0.0.1:${p2}; proxy_pass 127.0.0.1:${(bad.address() as AddressInfo).port}; }
}
`),
  );
  // A plain client: keepwire originates the TLS.
  const text = await new Promise<string>((resolve, reject) => {
    const c = createConnectionTo(p1);
    let got = '';
    c.on('connect', () => c.write('over tls'));
    c.on('data', (d) => {
      got += d;
      if (got.length >= 8) {
        c.end();
        resolve(got);
      }
    });
    c.on('error', reject);
  });
  assert.equal(text, 'over tls');
  const refused = await new Promise<boolean>((resolve) => {
    const c = createConnectionTo(p2);
    c.on('data', () => resolve(false));
    c.on('close', () => resolve(true));
    c.on('error', () => {});
  });
  assert.ok(refused, 'the client is closed when the upstream does not verify');
  const deadline = Date.now() + 5000;
  while (!records.some((r) => r.reason === 'connect_failed') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  const failed = records.find((r) => r.reason === 'connect_failed');
  assert.match(failed?.detail ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
});

function createConnectionTo(port: number): Socket {
  return netConnect(port, '127.0.0.1');
}
