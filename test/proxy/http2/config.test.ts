/**
 * The HTTP/2 directives from config text: `http2 on` (nginx 1.25.1+) in http
 * or server, the old `listen ... http2` refused with the new spelling as the
 * hint, http2_ping_interval off by default and never 0, and the settings
 * taken by the server records.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../../src/config/index.js';

test('http2 settings are read from http and server, as nginx', () => {
  const parsed = parseConfigText(
    `http {
       http2 on;
       http2_ping_interval 30s;
       server { listen 127.0.0.1:1; http2_max_concurrent_streams 64; location / { return 200; } }
       server { listen 127.0.0.1:2; http2 off; location / { return 200; } }
     }`,
    'c.conf',
  );
  assert.deepEqual(parsed.diagnostics, []);
  const [a, b] = parsed.config!.http!.servers;
  assert.equal(a!.http2, true);
  assert.equal(a!.http2MaxConcurrentStreams, 64);
  assert.equal(a!.http2PingIntervalMs, 30_000);
  assert.equal(a!.http2PingTimeoutMs, 20_000);
  assert.equal(b!.http2, false);
  assert.equal(b!.http2MaxConcurrentStreams, 128);
});

test('listen ... http2 is refused with `http2 on;` as the fix', () => {
  const parsed = parseConfigText(
    'http { server { listen 127.0.0.1:1 http2; location / { return 200; } } }',
    'c.conf',
  );
  const d = parsed.diagnostics.find((x) => x.severity === 'error');
  assert.ok(d);
  assert.match(d.message, /listen parameter "http2" is not supported/);
  assert.match(d.hint ?? '', /http2 on;/);
});

test('http2_ping_interval takes off or a time, never 0', () => {
  const parsed = parseConfigText(
    'http { server { listen 127.0.0.1:1; http2_ping_interval 0; location / { return 200; } } }',
    'c.conf',
  );
  const d = parsed.diagnostics.find((x) => x.severity === 'error');
  assert.ok(d);
  assert.match(d.hint ?? '', /off/);
});
