/**
 * The real `keepwire serve` process with an http {} block: it is served (no
 * "not served" warning), one JSON access line per request, SIGHUP swaps the
 * configuration while a request in flight on the old one completes, and
 * SIGTERM lets a request in flight finish (with Connection: close) before
 * exiting 0.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fetchRaw, get, okResponse, RawClient, rawUpstream } from '../proxy/http/fixtures.js';
import { closedPort, type LogLine, serveCli, sleep, within } from '../support.js';

function conf(port: number, upstreamPort: number, extraLocation = ''): string {
  return `worker_shutdown_timeout 5s;
http {
    upstream app { server 127.0.0.1:${upstreamPort}; keepalive 4; }
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://app; proxy_http_version 1.1; }
        ${extraLocation}
    }
}
`;
}

test('serve runs http {}: access log, SIGHUP reload with a request in flight, SIGTERM drain', async (t) => {
  const up = await rawUpstream((req, respond) => {
    const delay = req.url.startsWith('/slow') ? 800 : 0;
    setTimeout(() => respond(okResponse(`up ${req.url}`)), delay);
  });
  t.after(() => up.close());
  const port = await closedPort();
  const serve = serveCli(t, conf(port, up.port));
  const { child, file, lines, exited } = serve;
  const waitLine = (pred: (l: LogLine) => boolean, what: string) => serve.waitFor(pred, what, 15_000);
  await waitLine((l) => l.msg === 'started', 'started');
  assert.doesNotMatch(serve.stderr(), /not served/);

  const first = await fetchRaw(port, get('/a'));
  assert.equal(first.body.toString(), 'up /a');
  const access = await waitLine((l) => l.msg === 'request' && l.path === '/a', 'access line');
  assert.equal(access.status, 200);
  assert.equal(access.upstream, `127.0.0.1:${up.port}`);
  for (const key of ['method', 'bytesSent', 'upstreamConnect', 'retries', 'timings', 'reason'])
    assert.ok(key in access, key);
  // The access line is serialised apart from pino: it keeps pino's info-line fields.
  assert.equal(access.level, 30);
  assert.equal(access.pid, child.pid);
  assert.ok(!Number.isNaN(Date.parse(String(access.time))), `time ${access.time}`);

  // A slow request on the old configuration, then reload.
  const slow = await RawClient.open(port);
  slow.send(get('/slow-1'));
  await sleep(100);
  writeFileSync(file, conf(port, up.port, 'location /v { return 200 "v2"; }'));
  child.kill('SIGHUP');
  await waitLine((l) => l.msg === 'reloaded', 'reloaded');
  const v2 = await fetchRaw(port, get('/v'));
  assert.equal(v2.body.toString(), 'v2');
  const slowRes = await slow.response({ timeoutMs: 5_000 });
  assert.equal(
    slowRes.body.toString(),
    'up /slow-1',
    'the request in flight finished on the old configuration',
  );
  slow.close();

  // SIGTERM with a request in flight: it completes, then the process exits 0.
  const last = await RawClient.open(port);
  last.send(get('/slow-2'));
  await sleep(100);
  child.kill('SIGTERM');
  const lastRes = await last.response({ timeoutMs: 5_000 });
  assert.equal(lastRes.status, 200);
  assert.equal(lastRes.headers.connection, 'close');
  assert.equal(await within(exited, 10_000, 'exit'), 0);
  assert.ok(lines.some((l) => l.msg === 'stopped'));
});
