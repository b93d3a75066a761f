/**
 * What SIGTERM leaves behind in a real `keepwire serve` process:
 *   - nothing: once `stopped` is logged the process exits, even when an
 *     upstream closed a kept-alive connection after its response (its
 *     proxy_read_timeout timer stayed armed and kept the process alive for up
 *     to proxy_read_timeout, 59.6 s measured);
 *   - a request still in flight at the worker_shutdown_timeout deadline is
 *     cut with a RST, as the README says ("reset the rest"), not a FIN that
 *     a client could take for the end of a response.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fetchRaw, get, okResponse, RawClient, rawUpstream } from '../proxy/http/fixtures.js';
import { closedPort, serveCli, sleep, within } from '../support.js';

function conf(port: number, upstreamPort: number, shutdown: string): string {
  return `worker_shutdown_timeout ${shutdown};
http {
    upstream app { server 127.0.0.1:${upstreamPort}; keepalive 4; }
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_read_timeout 60s; }
    }
}
`;
}

test('after stopped the process exits at once, though an upstream closed its kept-alive connection', async (t) => {
  // The app closes a kept-alive connection 100 ms after its response, as an app server's keep-alive timeout does.
  const up = await rawUpstream((_req, respond) => respond(okResponse('hi')), { idleCloseMs: 100 });
  t.after(() => up.close());
  const port = await closedPort();
  const serve = serveCli(t, conf(port, up.port, '10s'));
  await serve.waitFor((l) => l.msg === 'started', 'started', 15_000);
  const res = await fetchRaw(port, get('/'));
  assert.equal(res.body.toString(), 'hi');
  await within(
    (async () => {
      while (up.accepted === 0 || up.sockets.size > 0) await sleep(20);
    })(),
    5000,
    'the upstream to close its connection',
  );
  await sleep(100);
  const signalled = Date.now();
  serve.child.kill('SIGTERM');
  await serve.waitFor((l) => l.msg === 'stopped', 'stopped', 10_000);
  const code = await within(serve.exited, 5000, 'exit after stopped (not proxy_read_timeout later)');
  assert.equal(code, 0);
  assert.ok(Date.now() - signalled < 5000);
});

test('at the worker_shutdown_timeout deadline a request in flight is reset, not closed cleanly', async (t) => {
  // The app never answers: the request is still in flight at the deadline.
  const up = await rawUpstream(() => {});
  t.after(() => up.close());
  const port = await closedPort();
  const serve = serveCli(t, conf(port, up.port, '1s'));
  await serve.waitFor((l) => l.msg === 'started', 'started', 15_000);
  const client = await RawClient.open(port);
  const ending = new Promise<string>((resolve) => {
    client.socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    client.socket.once('end', () => resolve('end (FIN)'));
  });
  client.send(get('/hang'));
  await within(
    (async () => {
      while (up.requests.length === 0) await sleep(20);
    })(),
    5000,
    'the request to reach the upstream',
  );
  serve.child.kill('SIGTERM');
  assert.equal(await within(ending, 10_000, 'the client connection to end'), 'ECONNRESET');
  const record = await serve.waitFor((l) => l.msg === 'request' && l.path === '/hang', 'access line', 10_000);
  assert.equal(record.reason, 'shutdown');
  assert.equal(await within(serve.exited, 10_000, 'exit'), 0);
  client.socket.destroy();
});
