/**
 * `access_log off` in the real `keepwire serve` process: standard output
 * carries no `request` line for a location with access log off and one for
 * the other location, and a SIGHUP reload that turns it off for the whole
 * `http {}` takes effect for the next requests.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fetchRaw, get, okResponse, rawUpstream } from '../proxy/http/fixtures.js';
import { closedPort, type LogLine, serveCli, sleep } from '../support.js';

function conf(port: number, upstreamPort: number, httpLevel = ''): string {
  return `http {
    ${httpLevel}
    upstream app { server 127.0.0.1:${upstreamPort}; keepalive 4; }
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://app; proxy_http_version 1.1; }
        location /healthz { access_log off; return 200 "ok\\n"; }
        location /loud { access_log on; return 200 "loud\\n"; }
    }
}
`;
}

test('serve: access_log off writes no request line on standard output; a reload turning it off at http level applies', async (t) => {
  const up = await rawUpstream((req, respond) => respond(okResponse(`up ${req.url}`)));
  t.after(() => up.close());
  const port = await closedPort();
  const serve = serveCli(t, conf(port, up.port));
  const requests = () => serve.lines.filter((l) => l.msg === 'request').map((l) => l.path);
  const waitLine = (pred: (l: LogLine) => boolean, what: string) => serve.waitFor(pred, what, 15_000);
  await waitLine((l) => l.msg === 'started', 'started');

  assert.equal((await fetchRaw(port, get('/healthz'))).status, 200);
  assert.equal((await fetchRaw(port, get('/a'))).body.toString(), 'up /a');
  await waitLine((l) => l.msg === 'request' && l.path === '/a', 'access line of /a');
  await sleep(100);
  assert.deepEqual(requests(), ['/a']);

  // `access_log off` at http level: inherited by / but not by /loud, which sets on.
  writeFileSync(serve.file, conf(port, up.port, 'access_log off;'));
  serve.child.kill('SIGHUP');
  await waitLine((l) => l.msg === 'reloaded', 'reloaded');
  assert.equal((await fetchRaw(port, get('/b'))).body.toString(), 'up /b');
  assert.equal((await fetchRaw(port, get('/loud'))).status, 200);
  await waitLine((l) => l.msg === 'request' && l.path === '/loud', 'access line of /loud');
  await sleep(100);
  assert.deepEqual(requests(), ['/a', '/loud']);
});
