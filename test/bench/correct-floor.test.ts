/**
 * Floor (d) of the benches (bench/correct-floor.ts) is a measuring device,
 * but its ratio to nginx is only worth quoting while it stays a correct
 * proxy: what it claims to refuse it refuses, what it accepts it passes on
 * whole, and a response cut short never looks complete. Real sockets, an
 * upstream parsing requests by hand.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:net';
import { after, before, test } from 'node:test';
import { runCorrectFloor } from '../../bench/correct-floor.js';
import { fetchRaw, okResponse, RawClient, type RawUpstream, rawUpstream } from '../proxy/http/fixtures.js';

let up: RawUpstream;
let floor: Server;
let port: number;
const BIG = Buffer.alloc(300_000, 'x');

before(async () => {
  up = await rawUpstream((req, respond) => {
    if (req.url === '/big')
      respond(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG.length}\r\n\r\n`), BIG]));
    else if (req.url === '/hop')
      respond(
        'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\nok',
      );
    else if (req.url === '/cut') {
      req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
      setTimeout(() => req.socket.destroy(), 50);
    } else if (req.url === '/chunked')
      respond('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
    else if (req.url === '/bad') respond('HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 2\r\n\r\nok');
    else if (req.url === '/eof') {
      req.socket.end('HTTP/1.1 200 OK\r\n\r\nuntil close');
    } else
      respond(okResponse(`up ${req.url} ${req.headers.connection ?? '-'} ${req.headers['x-hop'] ?? '-'}`));
  });
  floor = await runCorrectFloor(0, up.port);
  port = (floor.address() as { port: number }).port;
});

after(async () => {
  floor.close();
  await up.close();
});

test('floor (d) refuses what a correct proxy must not pass on', async () => {
  for (const [raw, status] of [
    ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: a\r\nX: y\rz\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: a\r\n X: folded\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx', 400],
    ['GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 501],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi', 501],
  ] as const) {
    const r = await fetchRaw(port, raw);
    assert.equal(r.status, status, JSON.stringify(raw));
  }
  assert.equal(up.requests.length, 0, 'nothing refused reached the upstream');
});

test('floor (d) drops hop-by-hop headers both ways and keeps the rest', async () => {
  const r = await fetchRaw(
    port,
    'GET /h HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nProxy-X-Hop: 1\r\n\r\n',
  );
  assert.equal(r.body.toString(), 'up /h - -');
  const last = up.requests.at(-1)!;
  assert.equal(last.headers['keep-alive'], undefined);
  assert.equal(last.headers['proxy-x-hop'], undefined);
  const hop = await fetchRaw(port, 'GET /hop HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(hop.headers['x-kept'], '1');
  assert.equal(hop.headers['keep-alive'], undefined);
  assert.equal(hop.headers.connection, undefined);
});

test('floor (d) keeps connections: pipelined requests in order, bodies whole, upstream reused', async () => {
  const c = await RawClient.open(port);
  const accepted = up.accepted;
  c.socket.write(
    'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /big HTTP/1.1\r\nHost: a\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: a\r\n\r\n',
  );
  assert.equal((await c.response()).body.toString(), 'up /1 - -');
  assert.deepEqual((await c.response()).body, BIG);
  const head = await c.response({ head: true });
  assert.equal(head.body.length, 0);
  c.socket.write('GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  const last = await c.response();
  assert.equal(last.headers.connection, 'close');
  await c.waitClosed();
  assert.ok(up.accepted - accepted <= 1, 'one pooled upstream connection served all four');
});

test('floor (d) never makes a cut or unframed response look complete', async () => {
  await assert.rejects(fetchRaw(port, 'GET /cut HTTP/1.1\r\nHost: a\r\n\r\n'));
  assert.equal((await fetchRaw(port, 'GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n')).status, 502);
  assert.equal((await fetchRaw(port, 'GET /bad HTTP/1.1\r\nHost: a\r\n\r\n')).status, 502);
  const eof = await fetchRaw(port, 'GET /eof HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(eof.body.toString(), 'until close');
  assert.equal(eof.headers.connection, 'close');
});
