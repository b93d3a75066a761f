/**
 * Stream (L4) sessions in the metrics: accepted and handled per listen,
 * sessions ended by the session log's reason (a proxy_timeout expiry is
 * `idle_timeout`), the open session in keepwire_connections{state="stream"},
 * the stream group's server health, and so_keepalive as an info metric.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { modelFromText } from '../model-text.js';
import { startHttp } from '../proxy/http/fixtures.js';
import { backend, closedPort, within } from '../support.js';
import { parseExposition, sampleValue } from './scrape.js';

test('stream sessions: accepted, open, ended by idle_timeout, server health, so_keepalive', async (t) => {
  const echo = await backend();
  t.after(() => echo.close());
  const port = await closedPort();
  const pages = await closedPort();
  const kw = await startHttp(
    modelFromText(`events { worker_connections 64; }
stream {
  upstream l4group { server 127.0.0.1:${echo.port}; }
  server { listen 127.0.0.1:${port} so_keepalive=20s:5s:3; proxy_pass l4group; proxy_timeout 1s; }
}
http { server { listen 127.0.0.1:${pages}; location /metrics { metrics; } } }
`),
  );
  t.after(() => kw.close());
  const scrape = async () => parseExposition(await (await fetch(`http://127.0.0.1:${pages}/metrics`)).text());
  const listener = { listener: `127.0.0.1:${port}` };

  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  const echoed = new Promise<void>((resolve) => s.once('data', () => resolve()));
  s.write('x');
  await within(echoed, 10_000, 'the echo through the stream proxy');
  const open = await scrape();
  assert.equal(sampleValue(open, 'keepwire_connections', { ...listener, state: 'stream' }), 1);
  assert.equal(sampleValue(open, 'keepwire_connections_accepted_total', { ...listener, kind: 'stream' }), 1);
  assert.equal(
    sampleValue(open, 'keepwire_upstream_server_active_connections', {
      upstream: 'l4group',
      server: `127.0.0.1:${echo.port}`,
    }),
    1,
  );
  await within(closed, 10_000, 'the session closed by proxy_timeout 1s');
  // The session's end is counted once both sockets are closed.
  const deadline = Date.now() + 10_000;
  let ended = 0;
  while (Date.now() < deadline) {
    ended = sampleValue(await scrape(), 'keepwire_stream_sessions_ended_total', {
      ...listener,
      reason: 'idle_timeout',
    });
    if (ended > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(ended, 1);
  const after = await scrape();
  assert.equal(sampleValue(after, 'keepwire_connections', { ...listener, state: 'stream' }), 0);
  assert.equal(
    sampleValue(after, 'keepwire_listener_keepalive_info', {
      ...listener,
      kind: 'stream',
      so_keepalive: '20s:5s:3',
    }),
    1,
  );
  assert.equal(
    sampleValue(after, 'keepwire_upstream_server_up', {
      upstream: 'l4group',
      server: `127.0.0.1:${echo.port}`,
    }),
    1,
  );
});
