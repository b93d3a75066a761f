/**
 * Idle keep-alive client connections held as their TCP handle only
 * (src/proxy/http/parked.ts): the net.Socket is released once a connection
 * has been idle a while, and made again when the next bytes arrive. Every
 * behaviour of an idle connection must be the same parked as not: the next
 * request (whole, pipelined, in pieces, with a body), keepalive_requests and
 * keepalive_time counted across parks, the client's close, keepalive_timeout,
 * stop and graceful drain, the connection counts. Each test checks that the
 * connection really was parked (a test that never parks could not fail), and
 * the same behaviour tests run again with parking forced off (the fallback
 * where Node lacks the internals).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { bareHandlesAvailable } from '../../../src/kernel/node-internals.js';
import { liveHttp } from '../../../src/metrics/live.js';
import { forceNoParking, parking, parkingCounts } from '../../../src/proxy/http/parked.js';
import type { HttpFrontend } from '../../../src/proxy/http/server.js';
import { makePki, freePort as tlsFreePort } from '../tls/pki.js';
import {
  get,
  httpConfig,
  httpGroup,
  httpServer,
  location,
  okResponse,
  RawClient,
  type RawRequest,
  rawUpstream,
  server,
  sleep,
  startHttp,
  until,
} from './fixtures.js';

const saved = { ...parking };

before(() => {
  // Park after 50 ms idle, checked every 50 ms (1 s each by default).
  parking.afterMs = 50;
  parking.sweepMs = 50;
});

after(() => {
  Object.assign(parking, saved);
  forceNoParking(false);
});

function frontends(): HttpFrontend[] {
  const out: HttpFrontend[] = [];
  for (const g of liveHttp) out.push(...g.frontends);
  return out;
}

function liveConnections(): number {
  let n = 0;
  for (const f of frontends()) n += f.liveCount;
  return n;
}

async function withProxy(
  serverOpts: Parameters<typeof httpServer>[0],
  body: (ctx: { port: number; requests: RawRequest[]; close: () => Promise<void> }) => Promise<void>,
): Promise<void> {
  const requests: RawRequest[] = [];
  const upstream = await rawUpstream((req, respond) => {
    requests.push(req);
    respond(okResponse(`ok ${req.url} ${req.body.length}`));
  });
  const lb = await startHttp(
    httpConfig([httpServer(serverOpts)], [httpGroup('app', [server(upstream.port)])]),
  );
  let closed = false;
  try {
    await body({
      port: lb.port,
      requests,
      close: async () => {
        closed = true;
        await lb.close();
      },
    });
  } finally {
    if (!closed) await lb.close();
    await upstream.close();
  }
}

for (const parked of [true, false]) {
  const mode = parked ? 'parked' : 'parking forced off (fallback)';
  describe(`idle keep-alive connections, ${mode}`, () => {
    before(() => forceNoParking(!parked));
    after(() => forceNoParking(false));

    /** Waits until the connection idle now is parked (or, forced off, past the time it would be). */
    async function idleLongEnough(parksBefore: number): Promise<void> {
      if (parked) await until(() => parkingCounts.parks > parksBefore, 'connection parked');
      else {
        await sleep(300);
        assert.equal(parkingCounts.parks, parksBefore, 'parked although forced off');
      }
    }

    test('requests on a parked connection are answered, one after another; keepalive_requests counts across parks', async () => {
      if (parked && !bareHandlesAvailable()) return;
      await withProxy({ keepaliveRequests: 4 }, async ({ port }) => {
        const c = await RawClient.open(port);
        for (let i = 1; i <= 4; i++) {
          const parks = parkingCounts.parks;
          c.send(get(`/r${i}`));
          const res = await c.response();
          assert.equal(res.status, 200);
          assert.equal(res.body.toString(), `ok /r${i} 0`);
          assert.equal(res.headers.connection, i < 4 ? 'keep-alive' : 'close', `response ${i}`);
          if (i < 4) {
            await idleLongEnough(parks);
            const f = frontends()[0]!;
            const conn = [...f.connections][0]!;
            assert.equal(conn.isParked, parked);
            // stub_status / metrics: a parked connection is waiting.
            assert.equal(conn.state, 'waiting');
            assert.equal(conn.requests, i);
          }
        }
        await c.waitClosed(3_000);
        await until(() => liveConnections() === 0, 'connection count back to 0');
        assert.equal(parkingCounts.parked, 0);
      });
    });

    test('pipelined requests, a request in pieces and a request body right after a park', async () => {
      if (parked && !bareHandlesAvailable()) return;
      await withProxy({}, async ({ port, requests }) => {
        const c = await RawClient.open(port);
        c.send(get('/first'));
        assert.equal((await c.response()).status, 200);
        let parks = parkingCounts.parks;
        await idleLongEnough(parks);
        // Two requests in one write: the first read after the park carries both.
        c.send(get('/p1') + get('/p2'));
        assert.equal((await c.response()).body.toString(), 'ok /p1 0');
        assert.equal((await c.response()).body.toString(), 'ok /p2 0');
        parks = parkingCounts.parks;
        await idleLongEnough(parks);
        // A request line cut in pieces: the first piece makes the socket again, the rest follows on it.
        const raw = get('/pieces');
        c.send(raw.slice(0, 5));
        await sleep(100);
        c.send(raw.slice(5, 20));
        await sleep(100);
        c.send(raw.slice(20));
        assert.equal((await c.response()).body.toString(), 'ok /pieces 0');
        parks = parkingCounts.parks;
        await idleLongEnough(parks);
        const body = 'x'.repeat(5000);
        c.send(`POST /post HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        assert.equal((await c.response()).body.toString(), 'ok /post 5000');
        assert.equal(requests.at(-1)!.body.toString(), body);
        c.close();
        await until(() => liveConnections() === 0, 'connection count back to 0');
      });
    });

    test('a client that closes a parked connection frees it: the connection count goes back to 0', async () => {
      if (parked && !bareHandlesAvailable()) return;
      await withProxy({}, async ({ port }) => {
        const clients: RawClient[] = [];
        const parks = parkingCounts.parks;
        for (let i = 0; i < 5; i++) {
          const c = await RawClient.open(port);
          c.send(get(`/c${i}`));
          assert.equal((await c.response()).status, 200);
          clients.push(c);
        }
        if (parked) await until(() => parkingCounts.parks >= parks + 5, 'five connections parked');
        else await idleLongEnough(parks);
        assert.equal(liveConnections(), 5);
        // Three end with a FIN, two with a reset.
        for (const c of clients.slice(0, 3)) c.socket.end();
        for (const c of clients.slice(3)) c.socket.resetAndDestroy();
        await until(() => liveConnections() === 0, 'connection count back to 0');
        assert.equal(parkingCounts.parked, 0);
      });
    });

    test('keepalive_timeout closes a parked connection (not before it)', async () => {
      if (parked && !bareHandlesAvailable()) return;
      const timeoutMs = 1_500;
      await withProxy({ keepaliveTimeoutMs: timeoutMs }, async ({ port }) => {
        const c = await RawClient.open(port);
        const parks = parkingCounts.parks;
        // Read before the request: the deadline is armed after it, when the response is written.
        const t0 = Date.now();
        c.send(get('/'));
        assert.equal((await c.response()).status, 200);
        await idleLongEnough(parks);
        await c.waitClosed(4 * timeoutMs);
        const idle = Date.now() - t0;
        assert.ok(idle >= timeoutMs, `closed after ${idle} ms`);
        assert.ok(idle < 2 * timeoutMs + 1_000, `closed after ${idle} ms`);
        await until(() => liveConnections() === 0, 'connection count back to 0');
        assert.equal(parkingCounts.parked, 0);
      });
    });

    test('stop closes parked connections at once and finishes', async () => {
      if (parked && !bareHandlesAvailable()) return;
      await withProxy({ keepaliveTimeoutMs: 60_000 }, async ({ port, close }) => {
        const clients: RawClient[] = [];
        const parks = parkingCounts.parks;
        for (let i = 0; i < 3; i++) {
          const c = await RawClient.open(port);
          c.send(get('/'));
          assert.equal((await c.response()).status, 200);
          clients.push(c);
        }
        if (parked) await until(() => parkingCounts.parks >= parks + 3, 'three connections parked');
        else await idleLongEnough(parks);
        const t0 = Date.now();
        await close();
        for (const c of clients) await c.waitClosed(3_000);
        assert.ok(Date.now() - t0 < 5_000, 'stop waited for the keepalive_timeout');
        assert.equal(parkingCounts.parked, 0);
      });
    });

    test('graceful drain: a parked connection that sends a request is answered with Connection: close, then closed', async () => {
      if (parked && !bareHandlesAvailable()) return;
      const requests: RawRequest[] = [];
      const upstream = await rawUpstream((req, respond) => {
        requests.push(req);
        respond(okResponse('ok'));
      });
      const lb = await startHttp(
        httpConfig([httpServer({ keepaliveTimeoutMs: 60_000 })], [httpGroup('app', [server(upstream.port)])]),
      );
      try {
        const c = await RawClient.open(lb.port);
        const parks = parkingCounts.parks;
        c.send(get('/'));
        assert.equal((await c.response()).headers.connection, 'keep-alive');
        await idleLongEnough(parks);
        // As on every idle connection at a graceful stop: it stays until its next request or keepalive_timeout.
        const stopping = lb.runtime.shutdown(20_000, 0);
        await sleep(200);
        assert.equal(c.closed, false);
        c.send(get('/during-drain'));
        const res = await c.response();
        assert.equal(res.status, 200);
        assert.equal(res.headers.connection, 'close');
        await c.waitClosed(3_000);
        const t0 = Date.now();
        await stopping;
        assert.ok(Date.now() - t0 < 3_000);
        assert.equal(parkingCounts.parked, 0);
      } finally {
        await lb.runtime.shutdown(0).catch(() => {});
        await upstream.close();
      }
    });
  });
}

test('an upgraded connection is never parked', async () => {
  if (!bareHandlesAvailable()) return;
  const upstream = await rawUpstream((req, respond) => {
    if (req.headers.upgrade !== undefined)
      respond('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    else respond(okResponse());
  });
  const lb = await startHttp(httpConfig([httpServer()], [httpGroup('app', [server(upstream.port)])]));
  try {
    const c = await RawClient.open(lb.port);
    c.send(get('/ws', 'Connection: Upgrade\r\nUpgrade: echo\r\n'));
    const res = await c.response({ head: true });
    assert.equal(res.status, 101);
    const parks = parkingCounts.parks;
    await sleep(400);
    assert.equal(parkingCounts.parks, parks, 'a tunnelled connection was parked');
    c.close();
    await until(() => liveConnections() === 0, 'connection count back to 0');
  } finally {
    await lb.close();
    await upstream.close();
  }
});

test('under keep-alive load no connection is parked (parking is for connections idle a while, not per response)', async () => {
  if (!bareHandlesAvailable()) return;
  const saved = { ...parking };
  // The default idle time before parking, swept often so a wrong park would be seen.
  parking.afterMs = 1_000;
  parking.sweepMs = 50;
  try {
    await withProxy({}, async ({ port }) => {
      const clients = await Promise.all(Array.from({ length: 8 }, () => RawClient.open(port)));
      const parks = parkingCounts.parks;
      const end = Date.now() + 1_500;
      let answered = 0;
      await Promise.all(
        clients.map(async (c) => {
          // Bounded: at most 500 requests per client (under the default keepalive_requests 1000), and 1.5 s.
          for (let i = 0; i < 500 && Date.now() < end; i++) {
            c.send(get(`/${i}`));
            assert.equal((await c.response()).status, 200);
            answered++;
          }
        }),
      );
      assert.ok(answered > 16, `${answered} requests answered`);
      assert.equal(parkingCounts.parks, parks, 'a busy connection was parked');
      // Idle now: all eight are parked after about a second.
      await until(() => parkingCounts.parks >= parks + 8, 'eight idle connections parked', 10_000);
      for (const c of clients) c.close();
      await until(() => liveConnections() === 0, 'connection count back to 0');
    });
  } finally {
    Object.assign(parking, saved);
  }
});

test('a parked connection holds its worker_connections slot, and frees it when it closes', async () => {
  if (!bareHandlesAvailable()) return;
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ returnDirective: { code: 200, text: 'ok\n' } })] })],
      [],
      { workerConnections: 1 },
    ),
  );
  try {
    const parks = parkingCounts.parks;
    const first = await RawClient.open(lb.port);
    first.send(get('/'));
    assert.equal((await first.response()).status, 200);
    await until(() => parkingCounts.parks > parks, 'connection parked');
    // Over the cap while the parked one holds the only slot: closed at once.
    const over = await RawClient.open(lb.port);
    await over.waitClosed(5_000);
    over.close();
    // The parked one is still served, then closes; its slot is free again.
    first.send(get('/again'));
    assert.equal((await first.response()).status, 200);
    first.close();
    await until(() => liveConnections() === 0, 'connection count back to 0');
    const next = await RawClient.open(lb.port);
    next.send(get('/'));
    assert.equal((await next.response()).status, 200);
    next.close();
  } finally {
    await lb.close();
  }
});

test('an idle TLS connection is never parked (its handle is the TLSWrap) and keeps serving', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const upstream = await rawUpstream((_req, respond) => respond(okResponse('ok')));
  t.after(() => upstream.close());
  const port = await tlsFreePort();
  const cert = pki.issue('a.test');
  const lb = await startHttp(
    pki.config(`http {
  upstream app { server 127.0.0.1:${upstream.port}; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cert.cert};
    ssl_certificate_key ${cert.key};
    location / { proxy_pass http://app; }
  }
}
`),
  );
  t.after(() => lb.close());
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'a.test', ca: pki.read(pki.ca) });
  t.after(() => socket.destroy());
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  const answers = (n: number) =>
    until(() => (text.match(/HTTP\/1\.1 200/g) ?? []).length >= n, `${n} answers`);
  await once(socket, 'secureConnect');
  const parks = parkingCounts.parks;
  socket.write(get('/1', '', 'a.test'));
  await answers(1);
  // Idle for many sweeps (50 ms each here).
  await sleep(400);
  assert.equal(parkingCounts.parks, parks, 'a TLS connection was parked');
  socket.write(get('/2', '', 'a.test'));
  await answers(2);
});
