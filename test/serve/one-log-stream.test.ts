/**
 * stdout is serve's one log stream: what it prints for the operator on
 * stderr about the configuration (warnings at start, the errors of a
 * rejected reload) is also in the JSON line of that event, so a collector
 * that reads stdout alone knows why a reload was refused.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fetchRaw, get } from '../proxy/http/fixtures.js';
import { closedPort, serveCli } from '../support.js';

function conf(port: number, extra = ''): string {
  return `lb_idle_timeout 60s;
http {
    server {
        listen 127.0.0.1:${port};
        keepalive_timeout 30s;
        location / { return 200 "ok"; }
        ${extra}
    }
}
`;
}

test('serve: configuration warnings and a rejected reload reach the JSON log on stdout, with file:line:col', async (t) => {
  const port = await closedPort();
  const serve = serveCli(t, conf(port));
  const warned = await serve.waitFor(
    (l) => l.msg === 'configuration warnings',
    'configuration warnings line',
  );
  const warnings = warned.diagnostics as string[];
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(warnings[0]!, /keepwire\.conf:5:\d+: warning: /);
  // stderr and stdout are separate pipes: the diagnostic may arrive after the log line.
  await serve.waitForStderr(/keepwire\.conf:5:\d+: warning: /, 10_000).catch(() => {});
  assert.match(serve.stderr(), /keepwire\.conf:5:\d+: warning: /, 'the operator still sees it on stderr');
  await serve.waitFor((l) => l.msg === 'started', 'started');

  writeFileSync(serve.file, conf(port, 'proxy_timeout 5parsecs;'));
  serve.child.kill('SIGHUP');
  const rejected = await serve.waitFor(
    (l) => typeof l.msg === 'string' && l.msg.startsWith('reload rejected'),
    'reload rejected line',
  );
  const errors = rejected.diagnostics as string[] | undefined;
  assert.ok(Array.isArray(errors), `diagnostics in ${JSON.stringify(rejected)}`);
  assert.ok(
    errors.some((e) => /keepwire\.conf:7:\d+: error: /.test(e)),
    JSON.stringify(errors),
  );
  assert.equal(
    (await fetchRaw(port, get('/'))).body.toString(),
    'ok',
    'the running configuration still serves',
  );
});
