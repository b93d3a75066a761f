/**
 * applyKeepalive then readKeepalive returns exactly what was set, through each
 * backend this Node has, on accepted sockets, connected sockets and sockets
 * configured before they connect.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import {
  applyKeepalive,
  applyKeepaliveVia,
  type KeepaliveBackend,
  KeepaliveUnsupportedError,
  nativeKeepaliveSupported,
  readKeepalive,
  systemDefaults,
} from '../../src/index.js';

let server: net.Server;
let port: number;
const accepted: net.Socket[] = [];
const opened: net.Socket[] = [];

before(async () => {
  server = net.createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(() => {
  for (const s of [...accepted, ...opened]) s.destroy();
  server.close();
});

async function connectPair(): Promise<{ client: net.Socket; peer: net.Socket }> {
  const count = accepted.length;
  const client = net.connect(port, '127.0.0.1');
  opened.push(client);
  await once(client, 'connect');
  while (accepted.length === count) await once(server, 'connection');
  return { client, peer: accepted[accepted.length - 1]! };
}

const full = { idle: 7, interval: 3, count: 4, userTimeout: 4000 };
const expected = { enabled: true, idle: 7, interval: 3, count: 4, userTimeout: 4000 };
const backends: KeepaliveBackend[] = nativeKeepaliveSupported ? ['native', 'ffi'] : ['ffi'];

test('the native backend is refused where this Node lacks it (detection: native-detection.test.ts)', {
  skip: nativeKeepaliveSupported && 'this Node has native interval/count',
}, () => {
  assert.throws(() => applyKeepaliveVia(new net.Socket(), full, 'native'), KeepaliveUnsupportedError);
});

for (const backend of backends) {
  test(`${backend}: a connected client socket holds exactly what was set`, async () => {
    const { client } = await connectPair();
    assert.equal(applyKeepaliveVia(client, full, backend), backend);
    assert.deepEqual(readKeepalive(client), expected);
  });

  test(`${backend}: an accepted socket holds exactly what was set`, async () => {
    const { peer } = await connectPair();
    applyKeepaliveVia(peer, full, backend);
    assert.deepEqual(readKeepalive(peer), expected);
  });

  test(`${backend}: settings made before connect are in force when 'connect' fires`, async () => {
    const client = net.connect(port, '127.0.0.1');
    opened.push(client);
    applyKeepaliveVia(client, full, backend);
    // A listener registered after ours runs after it: the values must be there.
    await once(client, 'connect');
    assert.deepEqual(readKeepalive(client), expected);
  });

  test(`${backend}: a socket created with new Socket() and configured before connect()`, async () => {
    const client = new net.Socket();
    opened.push(client);
    applyKeepaliveVia(client, full, backend);
    client.connect(port, '127.0.0.1');
    await once(client, 'connect');
    assert.deepEqual(readKeepalive(client), expected);
  });

  test(`${backend}: enable=false turns SO_KEEPALIVE off`, async () => {
    const { client } = await connectPair();
    applyKeepaliveVia(client, full, backend);
    applyKeepaliveVia(client, { enable: false }, backend);
    assert.equal(readKeepalive(client).enabled, false);
  });
}

test('empty fields keep the system defaults of this namespace', async () => {
  const { client } = await connectPair();
  assert.equal(applyKeepalive(client, { idle: 9 }), 'ffi');
  const sys = systemDefaults();
  assert.deepEqual(readKeepalive(client), {
    enabled: true,
    idle: 9,
    interval: sys.interval,
    count: sys.count,
    userTimeout: 0,
  });
});

test('a socket with nothing set has keepalive off and the system values', async () => {
  const { client } = await connectPair();
  const sys = systemDefaults();
  assert.deepEqual(readKeepalive(client), { enabled: false, ...sys, userTimeout: 0 });
});

test('native path: a stale Node cache (values changed through libc) is detected and repaired', {
  skip: !nativeKeepaliveSupported && 'this Node has no native interval/count',
}, async () => {
  const { client } = await connectPair();
  applyKeepaliveVia(client, { idle: 20, interval: 5, count: 3 }, 'native');
  applyKeepaliveVia(client, { idle: 30, interval: 6, count: 2 }, 'ffi');
  applyKeepaliveVia(client, { idle: 20, interval: 5, count: 3 }, 'native');
  assert.deepEqual(readKeepalive(client), { enabled: true, idle: 20, interval: 5, count: 3, userTimeout: 0 });
});

test('values the kernel would refuse are rejected before any setsockopt', async () => {
  const { client } = await connectPair();
  assert.throws(() => applyKeepalive(client, { idle: 0 }), /keepalive idle must be an integer in 1..32767/);
  assert.throws(() => applyKeepalive(client, { interval: 40000 }), /interval must be an integer in 1..32767/);
  assert.throws(() => applyKeepalive(client, { count: 128 }), /count must be an integer in 1..127/);
  assert.throws(() => applyKeepalive(client, { idle: 1.5 }), RangeError);
  assert.throws(
    () => applyKeepalive(client, { userTimeout: -1 }),
    /userTimeout must be a non-negative integer/,
  );
  assert.throws(() => applyKeepalive(client, { idel: 5 } as never), /unknown keepalive option "idel"/);
  assert.equal(readKeepalive(client).enabled, false);
});

test('a destroyed socket gets a clear error, not a silent no-op', async () => {
  const { client } = await connectPair();
  client.destroy();
  assert.throws(() => applyKeepalive(client, { idle: 5 }), /destroyed socket/);
  assert.throws(() => readKeepalive(client), KeepaliveUnsupportedError);
});
