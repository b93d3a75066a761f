/**
 * A cached upstream connection reused by a location with another
 * proxy_socket_keepalive carries that location's setting, `off` included.
 * (Before: `off` went through Node's setKeepAlive(false), which Node skips
 * when its cache says off, so on Node 20 a connection opened with keepalive
 * kept it.) The proxy's upstream socket is read from outside the proxy's
 * code: a pidfd_getfd copy of it, found by the port the backend saw.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { readProcessSockets } from '../../src/doctor/sockets.js';
import {
  httpConfig,
  httpGroup,
  httpServer,
  listen,
  location,
  passToGroup,
  server,
  startHttp,
} from '../proxy/http/fixtures.js';

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

test('proxy_socket_keepalive follows the location on a reused upstream connection: 7s:3s:4, then off, then 7s:3s:4', async (t) => {
  const upstreamPorts: number[] = [];
  const backend = http.createServer({ keepAliveTimeout: 30_000 }, (_req, res) => res.end('ok'));
  backend.on('connection', (s: Socket) => upstreamPorts.push(s.remotePort!));
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const backendPort = (backend.address() as AddressInfo).port;
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          listens: [listen(0)],
          locations: [
            location({
              prefix: '/on',
              proxyPass: passToGroup('app'),
              proxySocketKeepalive: { enable: true, idle: 7, interval: 3, count: 4 },
            }),
            location({
              prefix: '/off',
              proxyPass: passToGroup('app'),
              proxySocketKeepalive: { enable: false },
            }),
          ],
        }),
      ],
      [httpGroup('app', [server(backendPort)])],
    ),
  );
  t.after(async () => {
    await lb.close();
    backend.closeAllConnections();
    backend.close();
  });
  const upstreamSocket = () => {
    assert.equal(upstreamPorts.length, 1, 'one upstream connection, reused');
    const local = `127.0.0.1:${upstreamPorts[0]}`;
    const found = readProcessSockets(process.pid).find(
      (s) => s.local === local && s.peer === `127.0.0.1:${backendPort}`,
    );
    assert.ok(found, `the proxy's upstream socket ${local}`);
    return found;
  };

  assert.equal(await get(lb.port, '/on'), 200);
  let s = upstreamSocket();
  assert.deepEqual([s.keepalive, s.idle, s.interval, s.count], [true, 7, 3, 4]);

  assert.equal(await get(lb.port, '/off'), 200);
  s = upstreamSocket();
  assert.equal(s.keepalive, false, 'off turns keepalive off on the reused connection');

  assert.equal(await get(lb.port, '/on'), 200);
  s = upstreamSocket();
  assert.deepEqual([s.keepalive, s.idle, s.interval, s.count], [true, 7, 3, 4]);
});
