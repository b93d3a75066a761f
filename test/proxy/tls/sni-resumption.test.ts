/**
 * Session resumption on an address shared by several `ssl` servers, with
 * real clients (`openssl s_client -sess_out/-sess_in` and Node's `session`):
 *   - a server that is not the address's default resumes its own sessions,
 *     by ticket (TLS 1.2 and 1.3) and by the session ID cache (TLS 1.2);
 *   - a session made under one name resumes under another name of the same
 *     address, with the session's certificate (shown with s_client): OpenSSL looks the session up
 *     with the address's keys and cache before Node's SNI callback runs, as
 *     it did before nginx's SNI handling (up to nginx 1.29.1, e.g. Debian's
 *     1.22: checked against it with the same clients); see proxy/tls.ts;
 *   - a server without a certificate of its own is served with the default
 *     server's certificate (nginx's ngx_http_ssl_servername keeps the
 *     default server's SSL_CTX), its requests still go to its own block.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { startHttp } from '../http/fixtures.js';
import { freePort, makePki, type Pki } from './pki.js';

async function start(t: TestContext, pki: Pki, extra = '') {
  const a = pki.issue('a.test');
  const b = pki.issue('b.test');
  const port = await freePort();
  const proxy = await startHttp(
    pki.config(`http {
  ${extra}
  server {
    listen 127.0.0.1:${port} ssl;
    server_name a.test;
    ssl_certificate ${a.cert};
    ssl_certificate_key ${a.key};
    location / { return 200 "server a"; }
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name b.test;
    ssl_certificate ${b.cert};
    ssl_certificate_key ${b.key};
    location / { return 200 "server b"; }
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name c.test;
    location / { return 200 "server c"; }
  }
}
`),
  );
  t.after(() => proxy.close());
  return port;
}

interface SClient {
  /** `New` or `Reused`. */
  state: string;
  protocol: string;
  /** The CN of the certificate the server presented (for a resumed session, the session's). */
  subject: string;
  body: string;
}

/** One `openssl s_client` connection with SNI `name`, one request, until the server closes. */
function sClient(
  port: number,
  name: string,
  version: '1.2' | '1.3',
  ca: string,
  session: { out?: string; in?: string },
): Promise<SClient> {
  const args = [
    's_client',
    '-connect',
    `127.0.0.1:${port}`,
    '-servername',
    name,
    `-tls1_${version === '1.2' ? '2' : '3'}`,
    '-CAfile',
    ca,
    '-ign_eof',
    ...(session.out ? ['-sess_out', session.out] : []),
    ...(session.in ? ['-sess_in', session.in] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`openssl s_client did not finish; got ${JSON.stringify(out)}`));
    }, 20_000);
    child.stdout.on('data', (d) => {
      out += d.toString('latin1');
    });
    child.stderr.resume();
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', () => {
      clearTimeout(timer);
      const line = /^(New|Reused), (TLSv1\.[23])/m.exec(out);
      if (!line) {
        reject(new Error(`no handshake summary in s_client's output: ${JSON.stringify(out)}`));
        return;
      }
      resolve({
        state: line[1]!,
        protocol: line[2]!,
        subject: /^subject=.*CN ?= ?([^,\n]+)/m.exec(out)?.[1]?.trim() ?? '',
        body: /\r\n\r\n(server [abc])/.exec(out)?.[1] ?? '',
      });
    });
    // Sent at once: s_client writes it after the handshake; -ign_eof waits
    // for the server's close, so TLS 1.3 tickets (sent after the handshake) are in -sess_out.
    child.stdin.end(`GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`);
  });
}

test('a non-default SNI server resumes its sessions: by ticket over TLS 1.2 and 1.3, by the session ID cache over TLS 1.2 (openssl s_client)', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const tickets = await start(t, pki);
  const cache = await start(t, pki, 'ssl_session_tickets off; ssl_session_cache shared:SSL:1m;');
  for (const [port, version, how] of [
    [tickets, '1.2', 'ticket'],
    [tickets, '1.3', 'ticket'],
    [cache, '1.2', 'session ID'],
  ] as const) {
    const file = join(pki.dir, `b-${how}-${version}.sess`);
    const first = await sClient(port, 'b.test', version, pki.ca, { out: file });
    assert.deepEqual(first, {
      state: 'New',
      protocol: `TLSv${version}`,
      subject: 'b.test',
      body: 'server b',
    });
    const second = await sClient(port, 'b.test', version, pki.ca, { in: file });
    assert.deepEqual(
      second,
      { state: 'Reused', protocol: `TLSv${version}`, subject: 'b.test', body: 'server b' },
      `TLS ${version} ${how}`,
    );
  }
});

/** Node's client: a TLS connection with SNI `name` offering `session`; resolves after the response. */
function nodeClient(
  port: number,
  name: string,
  ca: Buffer,
  session?: Buffer,
): Promise<{ reused: boolean; session: Buffer | undefined; subject: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({
      port,
      host: '127.0.0.1',
      servername: name,
      ca,
      minVersion: 'TLSv1.3',
      ...(session ? { session } : {}),
    });
    let got: Buffer | undefined;
    let text = '';
    let subject = '';
    let reused = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no response; got ${JSON.stringify(text)}`));
    }, 20_000);
    socket.on('session', (s: Buffer) => {
      got = s;
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('secureConnect', () => {
      // Read now: both are gone once the socket has closed.
      subject = String(socket.getPeerCertificate().subject?.CN ?? '');
      reused = socket.isSessionReused();
      socket.write(`GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d) => {
      text += d.toString('latin1');
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({
        reused,
        session: got,
        subject,
        body: /\r\n\r\n(server [abc])/.exec(text)?.[1] ?? '',
      });
    });
  });
}

test("a session resumes under another name of the same address with the session's certificate, as nginx before 1.29.2; Host still picks the server block", async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const port = await start(t, pki);
  const ca = pki.read(pki.ca);
  const b = await nodeClient(port, 'b.test', ca);
  assert.ok(b.session, 'the server sent a TLS 1.3 ticket');
  assert.equal(b.reused, false);
  assert.equal(b.subject, 'b.test');
  const again = await nodeClient(port, 'b.test', ca, b.session);
  assert.deepEqual([again.reused, again.body], [true, 'server b']);
  // b's session offered with SNI a.test: resumed (the lookup precedes SNI), with b's certificate.
  // s_client, not Node: a Node 26 client (OpenSSL 3.5) does not resume a session under another name.
  for (const version of ['1.2', '1.3'] as const) {
    const file = join(pki.dir, `b-cross-${version}.sess`);
    await sClient(port, 'b.test', version, pki.ca, { out: file });
    const s = await sClient(port, 'a.test', version, pki.ca, { in: file });
    assert.deepEqual(s, { state: 'Reused', protocol: `TLSv${version}`, subject: 'b.test', body: 'server a' });
  }
});

test("a server sharing the ssl address without a certificate gets the default server's certificate, and its own requests", async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const port = await start(t, pki);
  // a.test is the default server: its certificate is what c.test's clients see (the name does not match it).
  const c = await sClient(port, 'c.test', '1.3', pki.ca, { out: join(pki.dir, 'c.sess') });
  assert.deepEqual(c, { state: 'New', protocol: 'TLSv1.3', subject: 'a.test', body: 'server c' });
  const again = await sClient(port, 'c.test', '1.3', pki.ca, { in: join(pki.dir, 'c.sess') });
  assert.deepEqual(again, { state: 'Reused', protocol: 'TLSv1.3', subject: 'a.test', body: 'server c' });
});
