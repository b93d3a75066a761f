/**
 * HTTP/2 connections through the generation lifecycle: a reload or a
 * shutdown tells each client GOAWAY (no race with a next request, unlike
 * HTTP/1.1's idle close) while the streams in flight finish; the new
 * generation serves new connections; at the shutdown deadline a stream
 * still in flight is cut with RST_STREAM and logged with reason `shutdown`.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { parseConfigText } from '../../../src/config/index.js';
import { closedPort } from '../fixtures.js';
import { h2request, h2session, startFromText } from './fixtures.js';

test('reload and shutdown: GOAWAY, streams in flight finish; at the deadline they are cut and logged', async () => {
  const up = createServer((req, res) => {
    req.resume();
    if (req.url === '/never') return;
    setTimeout(() => res.end(`ok ${req.url}`), 800);
  });
  await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
  const port = await closedPort();
  const text = `
    http {
      server {
        listen 127.0.0.1:${port};
        http2 on;
        location / { proxy_pass http://127.0.0.1:${(up.address() as AddressInfo).port}; }
      }
    }`;
  const lb = await startFromText(text);
  try {
    // Reload with a request in flight.
    const old = await h2session(port);
    const goaway = new Promise<number>((resolve) => old.once('goaway', (code: number) => resolve(code)));
    const oldClosed = new Promise<void>((resolve) => old.once('close', () => resolve()));
    const inFlight = h2request(old, { ':path': '/reload' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await lb.runtime.apply(parseConfigText(text, 'h2.conf').config!);
    assert.equal(await goaway, 0);
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'ok /reload');
    await oldClosed;
    const fresh = await h2session(port);
    assert.equal((await h2request(fresh, { ':path': '/new' })).status, 200);

    // Shutdown: one stream finishes within the grace period, one never can.
    const finishing = h2request(fresh, { ':path': '/finishing' });
    const never = h2request(fresh, { ':path': '/never' }).then(
      () => 'answered',
      (e: Error) => e.message,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const result = await lb.runtime.shutdown(2_000);
    assert.equal((await finishing).status, 200);
    assert.match(await never, /INTERNAL_ERROR|GOAWAY|closed|destroyed/i);
    assert.equal(result.reset, 1);
    const cut = lb.requests().find((x) => x.path === '/never');
    assert.equal(cut?.reason, 'shutdown');
    assert.equal(cut?.protocol, 'HTTP/2.0');
  } finally {
    await lb.close();
    await new Promise((resolve) => up.close(resolve));
  }
});
