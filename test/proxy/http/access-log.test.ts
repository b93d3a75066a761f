/**
 * `access_log off` as nginx users write it, from config text: a request
 * routed to a location with access log off gets no `request` line (proxied,
 * `return`, or a WebSocket tunnel), while the other locations of the same
 * server keep theirs; `upstream_retry` lines stay, so a retry is never
 * silent; requests answered before routing (400, 408, 414) follow the
 * address's default server, and a request no location matches (404) the
 * server chosen by Host.
 *
 * Absence is observed after a logged request sent later on the same client
 * connection: requests on one connection are answered and logged in order,
 * so by the time its line is there, the earlier request's would be too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../../src/config/index.js';
import { closedPort } from '../fixtures.js';
import {
  get,
  okResponse,
  RawClient,
  type RawUpstream,
  type RunningHttp,
  rawUpstream,
  sleep,
  startHttp,
  until,
} from './fixtures.js';

async function withProxy(
  text: (port: number, up: number) => string,
  body: (ctx: { lb: RunningHttp; up: RawUpstream }) => Promise<void>,
  upstreamOpts: Parameters<typeof rawUpstream>[1] = {},
): Promise<void> {
  const up = await rawUpstream((req, respond) => {
    if (req.headers.upgrade !== undefined) {
      respond('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      return;
    }
    respond(okResponse(`up ${req.url}`));
  }, upstreamOpts);
  const port = await closedPort();
  const parsed = parseConfigText(text(port, up.port), 'access-log.conf');
  assert.deepEqual(parsed.diagnostics, []);
  const lb = await startHttp(parsed.config!);
  try {
    await body({ lb, up });
  } finally {
    await lb.close();
    await up.close();
  }
}

/** Sends each request on one keep-alive connection, in order; returns the statuses. */
async function sequence(port: number, requests: string[]): Promise<number[]> {
  const c = await RawClient.open(port);
  try {
    const statuses: number[] = [];
    for (const raw of requests) {
      c.send(raw);
      statuses.push((await c.response({ timeoutMs: 5_000 })).status);
    }
    return statuses;
  } finally {
    c.close();
  }
}

/** Every request line, once the line of `last` (sent last) is there and anything in flight has arrived. */
async function loggedPaths(lb: RunningHttp, last: string): Promise<string[]> {
  await until(() => lb.requests().some((r) => r.path === last), `the request line of ${last}`);
  await sleep(100);
  return lb.requests().map((r) => `${r.host} ${r.path} ${r.status}`);
}

const oneServer = (port: number, up: number) => `http {
    upstream app { server 127.0.0.1:${up}; keepalive 4; }
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://app; proxy_http_version 1.1; }
        location /hot/ { access_log off; proxy_pass http://app; proxy_http_version 1.1; }
        location /healthz { access_log off; return 200 "ok\\n"; }
    }
}
`;

test('access_log off in a location: no request line for it, proxied or return, while another location on the same server logs', async () => {
  await withProxy(oneServer, async ({ lb, up }) => {
    const statuses = await sequence(lb.port, [
      get('/hot/1'),
      get('/healthz'),
      get('/a'),
      // A body to a return location is read and dropped, and still not logged.
      'POST /healthz HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello',
      get('/hot/2'),
      get('/b'),
    ]);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
    assert.deepEqual(
      up.requests.map((r) => r.url),
      ['/hot/1', '/a', '/hot/2', '/b'],
      'the quiet location is proxied as usual',
    );
    assert.deepEqual(await loggedPaths(lb, '/b'), ['test /a 200', 'test /b 200']);
  });
});

test('access_log off: a stale-connection retry is still logged as upstream_retry, only the request line is dropped', async () => {
  // The upstream resets the second request on each connection before reading
  // it: the stale keep-alive race, which keepwire retries on a fresh connection.
  await withProxy(
    oneServer,
    async ({ lb, up }) => {
      const statuses = await sequence(lb.port, [get('/hot/1'), get('/hot/2')]);
      assert.deepEqual(statuses, [200, 200], 'the client never sees the stale connection');
      assert.equal(up.accepted, 2, 'the second request went out again on a fresh connection');
      await until(() => lb.retries().length > 0, 'the upstream_retry line');
      assert.deepEqual(
        lb.retries().map((r) => [r.kind, r.method, r.path, r.attempt]),
        [['stale_connection', 'GET', '/hot/2', 2]],
      );
      // The logged location on the same address, after the quiet ones.
      assert.deepEqual(await sequence(lb.port, [get('/a')]), [200]);
      assert.deepEqual(await loggedPaths(lb, '/a'), ['test /a 200']);
    },
    { resetBeforeRequest: (index) => index === 1 },
  );
});

test('access_log off: a WebSocket tunnel through the location gets no request line; through another location it does', async () => {
  await withProxy(oneServer, async ({ lb }) => {
    const upgrade = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    for (const path of ['/hot/ws', '/ws']) {
      const c = await RawClient.open(lb.port);
      c.send(upgrade(path));
      assert.equal((await c.response({ timeoutMs: 5_000 })).status, 101, path);
      c.close();
      // The quiet tunnel ends (and would log) before the logged one starts.
      await sleep(100);
    }
    const [line] = await lb.waitForRequests(1);
    await sleep(100);
    assert.deepEqual(
      lb.requests().map((r) => [r.path, r.status]),
      [['/ws', 101]],
    );
    assert.equal(line!.path, '/ws');
  });
});

/** Two servers on one address; `quiet.test` has access_log off at server level. */
const vhosts = (quietIsDefault: boolean) => (port: number, up: number) =>
  `http {
    upstream app { server 127.0.0.1:${up}; }
    server {
        listen 127.0.0.1:${port}${quietIsDefault ? ' default_server' : ''};
        server_name quiet.test;
        access_log off;
        client_header_timeout 1s;
        location /who { return 200 "quiet\\n"; }
        location /loud { access_log on; proxy_pass http://app; }
    }
    server {
        listen 127.0.0.1:${port}${quietIsDefault ? '' : ' default_server'};
        server_name loud.test;
        client_header_timeout 1s;
        location /who { return 200 "loud\\n"; }
        location /hush { access_log off; proxy_pass http://app; }
    }
}
`;

const at = (host: string, path: string) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

/** 400 without Host, 400 for a malformed request line, 414 for a request line over the buffer, 408: all answered before routing. */
async function beforeRouting(port: number): Promise<number[]> {
  const statuses: number[] = [];
  for (const raw of [
    'GET /who HTTP/1.1\r\n\r\n',
    'NOT A REQUEST\r\n\r\n',
    `GET /who${'x'.repeat(20_000)} HTTP/1.1\r\nHost: loud.test\r\n\r\n`,
  ]) {
    const c = await RawClient.open(port);
    c.send(raw);
    statuses.push((await c.response({ timeoutMs: 5_000 })).status);
    c.close();
  }
  const slow = await RawClient.open(port);
  slow.send('GET /who HTTP/1.1\r\nHost: loud.test\r\n');
  statuses.push((await slow.response({ timeoutMs: 5_000 })).status);
  slow.close();
  return statuses;
}

test("access_log per virtual server: the Host's server and location decide (404 included); answers before routing follow the default server", async () => {
  await withProxy(vhosts(true), async ({ lb }) => {
    assert.deepEqual(await beforeRouting(lb.port), [400, 400, 414, 408]);
    assert.deepEqual(
      await sequence(lb.port, [
        at('quiet.test', '/who'),
        at('quiet.test', '/nowhere'),
        at('loud.test', '/hush'),
        at('quiet.test', '/loud'),
        at('loud.test', '/nowhere'),
        at('loud.test', '/who?end'),
      ]),
      [200, 404, 200, 200, 404, 200],
    );
    assert.deepEqual(await loggedPaths(lb, '/who?end'), [
      'quiet.test /loud 200',
      'loud.test /nowhere 404',
      'loud.test /who?end 200',
    ]);
  });
  // The same answers before routing are logged when the default server logs.
  await withProxy(vhosts(false), async ({ lb }) => {
    assert.deepEqual(await beforeRouting(lb.port), [400, 400, 414, 408]);
    const lines = await lb.waitForRequests(4);
    assert.deepEqual(lines.map((r) => [r.status, r.reason]).sort(), [
      [400, 'bad_request'],
      [400, 'bad_request'],
      [408, 'client_header_timeout'],
      [414, 'bad_request'],
    ]);
  });
});
