/**
 * nginx's standard WebSocket snippet,
 *   proxy_set_header Upgrade $http_upgrade;
 *   proxy_set_header Connection "upgrade";
 * works through keepwire with a real `ws` origin: proxy_set_header replaces
 * the Connection and Upgrade keepwire would send itself (one of each
 * upstream, as nginx), and an empty value (`$http_upgrade` on a plain
 * request) drops the header, as nginx.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import {
  fetchRaw,
  get,
  httpConfig,
  httpGroup,
  httpServer,
  location,
  okResponse,
  passToGroup,
  rawUpstream,
  server,
  startHttp,
} from './fixtures.js';

const SNIPPET = [
  { name: 'Upgrade', value: '$http_upgrade' },
  { name: 'Connection', value: 'upgrade' },
];

/** How often `name` appears in raw header pairs. */
function count(rawHeaders: string[], name: string): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) n++;
  return n;
}

test('nginx WebSocket snippet: a ws origin accepts the handshake (one Connection, one Upgrade) and echoes', async () => {
  const seen: string[][] = [];
  const origin = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  origin.on('connection', (socket, req) => {
    seen.push(req.rawHeaders);
    socket.on('message', (data, binary) => socket.send(data, { binary }));
  });
  await new Promise<void>((resolve) => origin.once('listening', () => resolve()));
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ proxyPass: passToGroup('app'), proxySetHeaders: SNIPPET })] })],
      [httpGroup('app', [server((origin.address() as AddressInfo).port)])],
    ),
  );
  try {
    const client = new WebSocket(`ws://127.0.0.1:${lb.port}/chat`);
    const echoed = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo in 5 s')), 5_000);
      client.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`handshake answered ${res.statusCode}`));
      });
      client.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      client.once('open', () => client.send('hello through keepwire'));
      client.once('message', (data) => {
        clearTimeout(timer);
        resolve(data.toString());
      });
    });
    assert.equal(echoed, 'hello through keepwire');
    assert.equal(seen.length, 1);
    assert.equal(count(seen[0]!, 'connection'), 1, 'one Connection header upstream');
    assert.equal(count(seen[0]!, 'upgrade'), 1, 'one Upgrade header upstream');
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.close();
    await closed;
    const [log] = await lb.waitForRequests(1);
    assert.equal(log!.status, 101);
  } finally {
    await lb.close();
    await new Promise<void>((resolve) => {
      for (const c of origin.clients) c.terminate();
      origin.close(() => resolve());
    });
  }
});

test('nginx WebSocket snippet on a plain request: the empty $http_upgrade drops Upgrade, Connection is the one set', async () => {
  const app = await rawUpstream((_req, respond) => respond(okResponse('plain')));
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ proxyPass: passToGroup('app'), proxySetHeaders: SNIPPET })] })],
      [httpGroup('app', [server(app.port)], { keepalive: 0 })],
    ),
  );
  try {
    const res = await fetchRaw(lb.port, get('/'));
    assert.equal(res.status, 200);
    const head = app.requests[0]!.rawHead;
    assert.doesNotMatch(head, /\r\nupgrade:/i, 'no Upgrade header for an empty value');
    assert.equal(head.match(/\r\nconnection:/gi)?.length, 1, head);
    assert.match(head, /\r\nConnection: upgrade(\r\n|$)/);
  } finally {
    await lb.close();
    await app.close();
  }
});
