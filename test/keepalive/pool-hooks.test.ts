/**
 * Pools set keepalive on their own sockets and would overwrite keepwire's:
 * the hooks must win, from connect and after each return to the pool.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { keepaliveConnector, readKeepalive, withKeepalive } from '../../src/index.js';

let server: http.Server;
let port: number;

before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

function get(agent: http.Agent): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, agent, path: '/' }, (res) => {
      res.resume();
      res.on('end', () => setImmediate(() => resolve(req.socket!)));
    });
    req.on('error', reject);
  });
}

const wanted = { idle: 11, interval: 4, count: 5 };
const expected = { enabled: true, idle: 11, interval: 4, count: 5, userTimeout: 0 };

test('without the hook, http.Agent overwrites keepalive when a socket returns to the pool', async () => {
  const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 2000 });
  try {
    const socket = await get(agent);
    // keepSocketAlive ran setKeepAlive(true, 2000): idle 2 s, not anything of ours.
    assert.equal(readKeepalive(socket).idle, 2);
  } finally {
    agent.destroy();
  }
});

test('withKeepalive(http.Agent): pooled sockets keep the settings across requests', async () => {
  const agent = withKeepalive(new http.Agent({ keepAlive: true, maxSockets: 1 }), wanted);
  try {
    const first = await get(agent);
    assert.deepEqual(readKeepalive(first), expected);
    const second = await get(agent);
    assert.equal(second, first, 'the pooled socket was reused');
    assert.deepEqual(readKeepalive(second), expected);
  } finally {
    agent.destroy();
  }
});

test('keepaliveConnector: undici pool sockets carry the settings', async () => {
  const sockets: Socket[] = [];
  const connect = keepaliveConnector(wanted);
  const pool = new Pool(`http://127.0.0.1:${port}`, {
    connections: 1,
    connect: (options, callback) =>
      connect(options, (err, socket) => {
        if (socket) sockets.push(socket as Socket);
        callback(err, socket as never);
      }),
  });
  try {
    for (let i = 0; i < 2; i++) {
      const res = await pool.request({ path: '/', method: 'GET' });
      assert.equal(await res.body.text(), 'ok');
    }
    assert.equal(sockets.length, 1, 'one pooled connection served both requests');
    assert.deepEqual(readKeepalive(sockets[0]!), expected);
  } finally {
    await pool.close();
  }
});

test('hooks reject invalid settings when they are created, not later inside the pool', () => {
  assert.throws(() => withKeepalive(new http.Agent(), { idle: 0 }), RangeError);
  assert.throws(() => keepaliveConnector({ count: 500 }), RangeError);
});
