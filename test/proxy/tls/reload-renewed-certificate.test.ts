/**
 * The certbot flow: the certificate files are replaced in place and keepwire
 * reloads (SIGHUP applies the configuration again). A new handshake gets the
 * renewed certificate; a TLS connection made before the reload is not
 * dropped: its next request is still answered.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { okResponse, rawUpstream, startHttp } from '../http/fixtures.js';
import { freePort, makePki } from './pki.js';

function open(port: number, ca: Buffer): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', servername: 'site.test', ca });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

function ask(s: TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(text)}`)), 10_000);
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (text.endsWith('ok')) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(text);
      }
    };
    s.on('data', onData);
    s.write('GET / HTTP/1.1\r\nHost: site.test\r\n\r\n');
  });
}

test('a reload picks up renewed certificate files; connections from before it go on', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const live = pki.issue('site.test', { file: 'live' });
  const up = await rawUpstream((_req, respond) => respond(okResponse()));
  t.after(() => up.close());
  const port = await freePort();
  const text = `http {
  upstream app { server 127.0.0.1:${up.port}; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate live.pem;
    ssl_certificate_key live.key;
    location / { proxy_pass http://app; }
  }
}
`;
  const proxy = await startHttp(pki.config(text));
  t.after(() => proxy.close());
  const ca = pki.read(pki.ca);
  const old = await open(port, ca);
  t.after(() => old.destroy());
  const before = old.getPeerCertificate().serialNumber;
  assert.match(await ask(old), /200 OK/);

  // Renewal: new files at the same paths, then the reload.
  const renewed = pki.issue('site.test', { file: 'renewed' });
  copyFileSync(renewed.cert, live.cert);
  copyFileSync(renewed.key, live.key);
  await proxy.runtime.apply(pki.config(text));

  const fresh = await open(port, ca);
  t.after(() => fresh.destroy());
  const after = fresh.getPeerCertificate().serialNumber;
  assert.notEqual(after, before, 'the new handshake sees the renewed certificate');
  assert.match(await ask(fresh), /200 OK/);
  // The connection from before the reload is still served (then closed, as an old generation's).
  assert.match(await ask(old), /200 OK/);
});

test('a reload whose key does not match its certificate is refused with file:line; the running certificate stays', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const live = pki.issue('site.test', { file: 'live' });
  const other = pki.issue('site.test', { file: 'other' });
  const up = await rawUpstream((_req, respond) => respond(okResponse()));
  t.after(() => up.close());
  const port = await freePort();
  const text = (key: string) => `http {
  upstream app { server 127.0.0.1:${up.port}; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate live.pem;
    ssl_certificate_key ${key};
    location / { proxy_pass http://app; }
  }
}
`;
  const proxy = await startHttp(pki.config(text(live.key)));
  t.after(() => proxy.close());
  await assert.rejects(proxy.runtime.apply(pki.config(text(other.key))), (e: Error) => {
    assert.match(e.message, /keepwire\.conf:5:\d+: TLS settings refused by OpenSSL/);
    return true;
  });
  const s = await open(port, pki.read(pki.ca));
  t.after(() => s.destroy());
  assert.match(await ask(s), /200 OK/);
});
