/**
 * Keep-alive limits on both legs, as nginx applies them.
 * Client leg: keepalive_timeout (idle close, and the Keep-Alive header only
 * when its second value is set), keepalive_requests, keepalive_time, 0.
 * Upstream leg: keepalive_requests, keepalive_timeout, keepalive_time, the
 * `keepalive N` cap, the upstream's Connection: close and Keep-Alive hint,
 * proxy_http_version 1.0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  get,
  httpConfig,
  httpGroup,
  httpServer,
  location,
  okResponse,
  passToGroup,
  RawClient,
  rawUpstream,
  server,
  sleep,
  startHttp,
} from './fixtures.js';

async function withProxy(
  serverOpts: Parameters<typeof httpServer>[0],
  groupOpts: Parameters<typeof httpGroup>[2],
  upstreamResponse: string | ((i: number) => string),
  body: (ctx: {
    port: number;
    upstream: Awaited<ReturnType<typeof rawUpstream>>;
    lb: Awaited<ReturnType<typeof startHttp>>;
  }) => Promise<void>,
) {
  let n = 0;
  const upstream = await rawUpstream((_req, respond) =>
    respond(typeof upstreamResponse === 'string' ? upstreamResponse : upstreamResponse(n++)),
  );
  const lb = await startHttp(
    httpConfig([httpServer(serverOpts)], [httpGroup('app', [server(upstream.port)], groupOpts)]),
  );
  try {
    await body({ port: lb.port, upstream, lb });
  } finally {
    await lb.close();
    await upstream.close();
  }
}

test('client keepalive_timeout: an idle client connection is closed after it; no Keep-Alive header unless a second value is set', async () => {
  await withProxy({ keepaliveTimeoutMs: 400 }, {}, okResponse(), async ({ port }) => {
    const c = await RawClient.open(port);
    c.send(get('/'));
    const res = await c.response();
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, 'keep-alive');
    assert.equal(res.headers['keep-alive'], undefined);
    const t0 = Date.now();
    await c.waitClosed(5_000);
    const idle = Date.now() - t0;
    assert.ok(idle >= 300 && idle < 3_000, `closed after ${idle} ms`);
  });
  await withProxy(
    { keepaliveTimeoutMs: 75_000, keepaliveHeaderTimeoutMs: 60_000 },
    {},
    okResponse(),
    async ({ port }) => {
      const c = await RawClient.open(port);
      c.send(get('/'));
      const res = await c.response();
      assert.equal(res.headers['keep-alive'], 'timeout=60');
      c.close();
    },
  );
});

test('client keepalive_timeout 0 disables keep-alive: Connection: close', async () => {
  await withProxy({ keepaliveTimeoutMs: 0 }, {}, okResponse(), async ({ port }) => {
    const c = await RawClient.open(port);
    c.send(get('/'));
    const res = await c.response();
    assert.equal(res.headers.connection, 'close');
    await c.waitClosed(3_000);
  });
});

test('client keepalive_requests 3: the third response says Connection: close and the connection closes', async () => {
  await withProxy({ keepaliveRequests: 3 }, {}, okResponse(), async ({ port }) => {
    const c = await RawClient.open(port);
    for (let i = 1; i <= 3; i++) {
      c.send(get(`/${i}`));
      const res = await c.response();
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection, i < 3 ? 'keep-alive' : 'close', `response ${i}`);
    }
    await c.waitClosed(3_000);
  });
});

test('client keepalive_time: a connection older than it is closed after the request in flight', async () => {
  await withProxy({ keepaliveTimeMs: 300 }, {}, okResponse(), async ({ port }) => {
    const c = await RawClient.open(port);
    c.send(get('/1'));
    assert.equal((await c.response()).headers.connection, 'keep-alive');
    await sleep(400);
    c.send(get('/2'));
    const res = await c.response();
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, 'close');
    await c.waitClosed(3_000);
  });
});

async function sequential(port: number, n: number, gapMs = 0): Promise<void> {
  const c = await RawClient.open(port);
  try {
    for (let i = 0; i < n; i++) {
      c.send(get(`/${i}`));
      assert.equal((await c.response()).status, 200);
      if (gapMs > 0) await sleep(gapMs);
    }
  } finally {
    c.close();
  }
}

test('upstream keepalive_requests 2: a pooled connection carries two requests, then a new one is opened', async () => {
  await withProxy({}, { keepaliveRequests: 2 }, okResponse(), async ({ port, upstream, lb }) => {
    await sequential(port, 5);
    assert.equal(upstream.accepted, 3);
    assert.deepEqual(
      lb.requests().map((r) => r.upstreamConnect),
      ['new', 'reused', 'new', 'reused', 'new'],
    );
  });
});

test('upstream keepalive_timeout: a connection idle longer than it is not reused', async () => {
  await withProxy({}, { keepaliveTimeoutMs: 200 }, okResponse(), async ({ port, upstream, lb }) => {
    await sequential(port, 2);
    await sequential(port, 1, 0);
    assert.equal(upstream.accepted, 1, 'back to back: reused');
    await sleep(450);
    assert.equal(upstream.sockets.size, 0, 'the idle connection was closed by keepwire');
    await sequential(port, 1);
    assert.equal(upstream.accepted, 2);
    assert.equal(lb.requests().at(-1)?.upstreamConnect, 'new');
  });
});

test('upstream keepalive_time: a connection older than it is not reused', async () => {
  await withProxy({}, { keepaliveTimeMs: 300 }, okResponse(), async ({ port, upstream }) => {
    await sequential(port, 2);
    assert.equal(upstream.accepted, 1);
    await sleep(350);
    await sequential(port, 1);
    assert.equal(upstream.accepted, 2);
  });
});

test("the upstream's Connection: close is obeyed: every request gets a new connection", async () => {
  await withProxy({}, {}, okResponse('ok', 'Connection: close\r\n'), async ({ port, upstream }) => {
    await sequential(port, 3);
    assert.equal(upstream.accepted, 3);
  });
});

test("the upstream's Keep-Alive: timeout=N hint: keepwire drops the connection a margin before N", async () => {
  await withProxy({}, {}, okResponse('ok', 'Keep-Alive: timeout=2\r\n'), async ({ port, upstream, lb }) => {
    await sequential(port, 2);
    assert.equal(upstream.accepted, 1, 'reused within the hint');
    // 2 s hint - 1 s margin: gone after 1 s idle, long before the upstream would close.
    await sleep(1_300);
    assert.equal(upstream.sockets.size, 0);
    await sequential(port, 1);
    assert.equal(upstream.accepted, 2);
    assert.equal(lb.requests().at(-1)?.upstreamConnect, 'new');
  });
});

test('proxy_http_version 1.0: HTTP/1.0 with Connection: close upstream, no reuse', async () => {
  const upstream = await rawUpstream((_req, respond) => respond(okResponse()));
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ proxyPass: passToGroup('app'), proxyHttpVersion: '1.0' })] })],
      [httpGroup('app', [server(upstream.port)])],
    ),
  );
  try {
    await sequential(lb.port, 3);
    assert.equal(upstream.accepted, 3);
    assert.equal(upstream.requests[0]?.version, 'HTTP/1.0');
    assert.equal(upstream.requests[0]?.headers.connection, 'close');
  } finally {
    await lb.close();
    await upstream.close();
  }
});

test('keepalive 1: of three connections used at once, one stays cached', async () => {
  const upstream = await rawUpstream((_req, respond) => setTimeout(() => respond(okResponse()), 100));
  const lb = await startHttp(
    httpConfig([httpServer()], [httpGroup('app', [server(upstream.port)], { keepalive: 1 })]),
  );
  try {
    await Promise.all([sequential(lb.port, 1), sequential(lb.port, 1), sequential(lb.port, 1)]);
    assert.equal(upstream.accepted, 3);
    await sleep(50);
    assert.equal(lb.runtime.httpGeneration?.pools[0]?.size, 1);
    assert.equal(upstream.sockets.size, 1, 'the two others were closed');
  } finally {
    await lb.close();
    await upstream.close();
  }
});
