/**
 * Under `worker_processes 2` the pages are the whole server's: requests
 * spread over both workers by the kernel, and whichever worker answers
 * `/metrics` or `/basic_status` counts every worker's requests (the gather
 * transport of src/serve/gather.ts asks each live worker).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startMaster } from '../serve/workers-support.js';
import { closedPort } from '../support.js';
import { parseExposition, sampleValue } from './scrape.js';

const N = 40;

test(`worker_processes 2: ${N} requests over both workers, metrics and stub_status count all of them`, async (t) => {
  const port = await closedPort();
  const pages = await closedPort();
  const kw = await startMaster(
    t,
    `worker_processes 2;
worker_shutdown_timeout 5s;
http {
    server { listen 127.0.0.1:${port} reuseport; location / { return 200 "hi\\n"; } }
    server { listen 127.0.0.1:${pages}; access_log off; location /metrics { metrics; } location /basic_status { stub_status; } }
}
`,
  );
  // Every worker must be serving before the count (each logs its own `started`).
  await kw.waitFor(
    () =>
      new Set(kw.lines.filter((l) => l.msg === 'started' && l.pid !== kw.pid).map((l) => l.pid)).size >= 2,
    'two workers started',
    30_000,
  );
  // A new connection per request, so the kernel spreads them over both workers: with reuseport
  // each worker has its own socket and the kernel picks one by the connection's address and port
  // (on one shared socket sequential connections can all go to one worker: CI saw 40 of 40).
  for (let i = 0; i < N; i++) {
    const r = await fetch(`http://127.0.0.1:${port}/r${i}`, { headers: { connection: 'close' } });
    assert.equal(r.status, 200);
    await r.text();
  }
  await kw.waitFor(
    () => kw.lines.filter((l) => l.msg === 'request' && l.listen === `127.0.0.1:${port}`).length >= N,
    `${N} access lines`,
  );
  const pids = new Set(
    kw.lines.filter((l) => l.msg === 'request' && l.listen === `127.0.0.1:${port}`).map((l) => l.pid),
  );
  assert.equal(pids.size, 2, 'both workers served requests');
  const listener = { listener: `127.0.0.1:${port}` };
  for (let i = 0; i < 4; i++) {
    const text = await (
      await fetch(`http://127.0.0.1:${pages}/metrics`, { headers: { connection: 'close' } })
    ).text();
    const s = parseExposition(text);
    assert.equal(sampleValue(s, 'keepwire_http_requests_total', listener), N, 'every worker counted');
    assert.equal(sampleValue(s, 'keepwire_connections_accepted_total', { ...listener, kind: 'http' }), N);
  }
  const stub = await (
    await fetch(`http://127.0.0.1:${pages}/basic_status`, { headers: { connection: 'close' } })
  ).text();
  const m = /^Active connections: \d+ \nserver accepts handled requests\n (\d+) (\d+) (\d+) \n/.exec(stub);
  assert.ok(m, stub);
  // The pages' own listener counts too: N on the main one, plus the scrapes.
  assert.ok(Number(m[3]) >= N + 4, stub);
});
