/**
 * The classic ALB 502 on loopback: a load balancer pools keep-alive
 * connections to a Node server and reuses one that has been idle for less
 * than its own idle timeout. Node's keepAliveTimeout (5 s by default, 1 s
 * here against an LB idle of 5 s: the same ordering, scaled down) closes it
 * first, so the LB's request meets a closed connection and gets no answer,
 * which the LB turns into a 502. configureServer raises the server's idle
 * above the LB's and the same reuse gets its answer.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { configureServer, keepaliveFor, readKeepalive, recommend } from '../../src/index.js';

const LB_IDLE_S = 5;
/**
 * Node's 5 s default scaled to the 5 s LB: below it, as in the incident.
 * Node 26 closes keepAliveTimeoutBuffer (1 s) later, so at 2 s.
 */
const SERVER_IDLE_MS = 1000;
/**
 * When the LB reuses the idle connection: inside its 5 s idle, 2.25x the
 * server's close on Node 26 (4.5x on Node 20), and below configureServer's
 * 10 s by 2.2x.
 */
const REUSE_AFTER_MS = 4500;

const REQUEST = 'GET / HTTP/1.1\r\nHost: lb\r\n\r\n';

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
}

/**
 * An LB's upstream connection: one request, idle for REUSE_AFTER_MS, then a
 * second request on the same connection whatever happened meanwhile (the LB
 * has not read the server's FIN yet: that is the race). Returns what the
 * second request got.
 */
async function lbReuse(port: number): Promise<{ answered: boolean; sawFinFirst: boolean }> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  let received = '';
  let finAt = -1;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  socket.on('end', () => {
    finAt = Date.now();
  });
  socket.write(REQUEST);
  const firstDeadline = Date.now() + 10_000;
  while (!/\r\n\r\nok$/.test(received)) {
    if (Date.now() > firstDeadline) throw new Error(`no first answer: ${JSON.stringify(received)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const idleFrom = Date.now();
  received = '';
  await new Promise((r) => setTimeout(r, REUSE_AFTER_MS));
  const sawFinFirst = finAt !== -1 && finAt < idleFrom + REUSE_AFTER_MS;
  if (!socket.destroyed && socket.writable) socket.write(REQUEST);
  // Answered, or the connection ended (FIN, RST): whichever comes first.
  const ended = new Promise<void>((resolve) => {
    if (socket.destroyed) resolve();
    socket.once('close', () => resolve());
    socket.once('end', () => resolve());
  });
  const answered = new Promise<void>((resolve) => {
    const check = () => {
      if (/^HTTP\/1\.1 200/.test(received)) resolve();
    };
    socket.on('data', check);
  });
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
  await Promise.race([ended, answered, timeout]);
  socket.destroy();
  return { answered: /^HTTP\/1\.1 200/.test(received), sawFinFirst };
}

function okServer(): http.Server {
  const server = http.createServer((_req, res) => res.end('ok'));
  server.keepAliveTimeout = SERVER_IDLE_MS;
  return server;
}

test('without configureServer, a server whose keep-alive timeout is below the LB idle leaves the LB a dead connection (the ALB 502)', async () => {
  const server = okServer();
  const port = await listen(server);
  try {
    const outcome = await lbReuse(port);
    assert.equal(outcome.sawFinFirst, true, 'the server closed the idle connection inside the LB idle');
    assert.equal(outcome.answered, false, 'the reused connection gave no answer');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('configureServer({ lbIdle }) keeps the idle connection past the LB idle, so the reused connection is answered', async () => {
  const server = okServer();
  const settings = configureServer(server, { lbIdle: LB_IDLE_S });
  const rec = recommend(LB_IDLE_S);
  assert.deepEqual(settings.keepAliveTimeout, {
    before: SERVER_IDLE_MS,
    after: rec.httpServerKeepaliveTimeout * 1000,
  });
  assert.ok(settings.keepAliveTimeout!.after > LB_IDLE_S * 1000);
  assert.equal(server.keepAliveTimeout, settings.keepAliveTimeout!.after);
  assert.ok(server.headersTimeout > server.keepAliveTimeout, 'headersTimeout above keepAliveTimeout');
  assert.ok(server.requestTimeout === 0 || server.requestTimeout >= server.headersTimeout);
  const port = await listen(server);
  try {
    const outcome = await lbReuse(port);
    assert.equal(outcome.sawFinFirst, false);
    assert.equal(outcome.answered, true);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('configureServer applies the recommended TCP keepalive to every accepted socket', async () => {
  const server = http.createServer((_req, res) => res.end('ok'));
  configureServer(server, { lbIdle: 90 });
  const accepted: net.Socket[] = [];
  server.on('connection', (s: net.Socket) => accepted.push(s));
  const port = await listen(server);
  const client = net.connect({ port, host: '127.0.0.1' });
  try {
    await once(client, 'connect');
    while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
    const state = readKeepalive(accepted[0]!);
    const want = keepaliveFor({ lbIdle: 90 });
    assert.equal(state.enabled, true);
    assert.equal(state.idle, want.idle);
    assert.equal(state.interval, want.interval);
    assert.equal(state.count, want.count);
  } finally {
    client.destroy();
    server.closeAllConnections();
    server.close();
  }
});

test('configureServer leaves timeouts already above the LB idle, and 0 (no idle close), alone', () => {
  const server = http.createServer();
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  const s = configureServer(server, { lbIdle: 60 });
  assert.deepEqual(s.keepAliveTimeout, { before: 0, after: 0 });
  const long = http.createServer();
  long.keepAliveTimeout = 600_000;
  assert.equal(configureServer(long, { lbIdle: 60 }).keepAliveTimeout!.after, 600_000);
  assert.ok(long.headersTimeout > 600_000);
  assert.ok(long.requestTimeout >= long.headersTimeout);
});

/** An HTTP/2 session idle for REUSE_AFTER_MS, then a request on it. */
async function h2Reuse(server: http2.Http2Server): Promise<{ closedFirst: boolean; status?: number }> {
  const port = await listen(server as unknown as net.Server);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  let closed = false;
  session.on('close', () => {
    closed = true;
  });
  const get = () =>
    new Promise<number | undefined>((resolve) => {
      if (session.closed || session.destroyed) return resolve(undefined);
      const req = session.request({ ':path': '/' });
      req.on('response', (h) => resolve(h[':status'] as number));
      req.resume();
      req.on('error', () => resolve(undefined));
      req.on('close', () => resolve(undefined));
      req.end();
    });
  assert.equal(await get(), 200);
  await new Promise((r) => setTimeout(r, REUSE_AFTER_MS));
  const closedFirst = closed;
  const status = await get();
  session.destroy();
  server.close();
  return { closedFirst, ...(status === undefined ? {} : { status }) };
}

test('an http2 server: configureServer raises the session idle timeout above the LB idle', async () => {
  const short = http2.createServer((_req, res) => res.end('ok'));
  short.setTimeout(SERVER_IDLE_MS);
  assert.deepEqual(await h2Reuse(short), { closedFirst: true });

  const fixed = http2.createServer((_req, res) => res.end('ok'));
  fixed.setTimeout(SERVER_IDLE_MS);
  const s = configureServer(fixed, { lbIdle: LB_IDLE_S });
  assert.equal(s.kind, 'http2');
  assert.deepEqual(s.sessionTimeout, {
    before: SERVER_IDLE_MS,
    after: recommend(LB_IDLE_S).httpServerKeepaliveTimeout * 1000,
  });
  assert.deepEqual(await h2Reuse(fixed), { closedFirst: false, status: 200 });
  assert.deepEqual(configureServer(http2.createServer(), { lbIdle: 60 }).sessionTimeout, {
    before: 0,
    after: 0,
  });
});
