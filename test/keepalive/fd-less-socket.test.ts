/**
 * A socket with no kernel descriptor gets a named error from every keepalive
 * path, never a silent no-op (before: applyKeepalive waited for a 'connect'
 * that never comes and reported success).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { TLSSocket } from 'node:tls';
import {
  applyKeepalive,
  applyKeepaliveVia,
  KeepaliveUnsupportedError,
  NoFileDescriptorError,
  nativeKeepaliveSupported,
  readKeepalive,
  SockoptError,
} from '../../src/index.js';
import { compileKeepalive, type KeepaliveFailure } from '../../src/keepalive/applier.js';
import { tempDir } from '../support.js';

const full = { idle: 7, interval: 3, count: 4 };

test('a TLSSocket over a JavaScript stream: applyKeepalive and readKeepalive throw NoFileDescriptorError', () => {
  const tls = new TLSSocket(new PassThrough());
  try {
    assert.throws(() => applyKeepalive(tls, full), NoFileDescriptorError);
    assert.throws(() => applyKeepalive(tls, { idle: 9 }), /no kernel file descriptor/);
    assert.throws(() => applyKeepaliveVia(tls, full, 'ffi'), NoFileDescriptorError);
    if (nativeKeepaliveSupported)
      assert.throws(() => applyKeepaliveVia(tls, full, 'native'), NoFileDescriptorError);
    assert.throws(() => readKeepalive(tls), NoFileDescriptorError);
    // Nothing was left waiting for a 'connect' that never comes.
    assert.equal(tls.listenerCount('connect'), 0);
  } finally {
    tls.destroy();
  }
});

test('NoFileDescriptorError is a KeepaliveUnsupportedError with its own name', () => {
  const tls = new TLSSocket(new PassThrough());
  try {
    applyKeepalive(tls, full);
    assert.fail('applyKeepalive returned for a socket without a descriptor');
  } catch (error) {
    assert.ok(error instanceof KeepaliveUnsupportedError);
    assert.equal((error as Error).name, 'NoFileDescriptorError');
  } finally {
    tls.destroy();
  }
});

test('the compiled so_keepalive applier logs one line naming the directive for a socket without a descriptor', () => {
  const failures: KeepaliveFailure[] = [];
  const applier = compileKeepalive('so_keepalive', { enable: true, ...full }, (f) => failures.push(f));
  const tls = new TLSSocket(new PassThrough());
  try {
    applier.apply(tls); // never throws: the connection is served without it
    applier.reapply(tls);
  } finally {
    tls.destroy();
  }
  assert.equal(failures.length, 2);
  for (const f of failures) {
    assert.equal(f.directive, 'so_keepalive');
    assert.equal(f.value, '7s:3s:4');
    assert.match(f.error, /no kernel file descriptor/);
  }
});

test('a destroyed socket: NoFileDescriptorError from apply and read', async () => {
  const server = net.createServer((s) => s.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  client.destroy();
  server.close();
  assert.throws(() => applyKeepalive(client, full), NoFileDescriptorError);
  assert.throws(() => readKeepalive(client), NoFileDescriptorError);
});

test('a Unix-domain socket has a descriptor but no TCP: the kernel refusal comes back with its errno name', async (t) => {
  const path = `${tempDir('kw-unix-', t)}/s`;
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  server.listen(path);
  await once(server, 'listening');
  const client = net.connect(path);
  await once(client, 'connect');
  t.after(() => {
    client.destroy();
    for (const s of accepted) s.destroy();
    server.close();
  });
  assert.throws(
    () => applyKeepalive(client, { idle: 9 }),
    (e: unknown) => e instanceof SockoptError && /^E[A-Z]+$/.test(e.code) && e.message.includes(e.code),
  );
});
