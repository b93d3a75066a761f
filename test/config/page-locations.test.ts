/**
 * `metrics;`, `stub_status;` and `status;` are location answers like
 * `return`: a location has exactly one of them, proxy_pass or return, and
 * `check` says which two collide, at the later one. Nothing is served where
 * not configured: a config without them has no page location.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { check, expectClean, expectDiagnostic } from './support.js';

const wrap = (inside: string) => `http {
    server {
        listen 127.0.0.1:8080;
${inside}
    }
}
`;

test('a location with metrics, stub_status or status serves that page', () => {
  const r = check(
    wrap(`        location /metrics { metrics; }
        location /basic_status { stub_status; }
        location /status { status; status_connections 50; }`),
  );
  expectClean(r);
  const locations = r.config!.http!.servers[0]!.locations;
  assert.deepEqual(
    locations.map((l) => [l.prefix, l.page, l.proxyPass, l.returnDirective]),
    [
      ['/metrics', 'metrics', undefined, undefined],
      ['/basic_status', 'stub_status', undefined, undefined],
      ['/status', 'status', undefined, undefined],
    ],
  );
  assert.equal(locations[2]!.statusConnections, 50);
  assert.equal(locations[0]!.statusConnections, 200, 'status_connections defaults to 200');
});

for (const [other, line, message] of [
  ['proxy_pass http://127.0.0.1:9000;', 'proxy_pass', 'both "proxy_pass" and "metrics"'],
  ['return 200;', 'return', 'both "return" and "metrics"'],
  ['stub_status;', 'stub_status', 'both "metrics" and "stub_status"'],
] as const)
  test(`metrics and ${line} in one location: a conflict at the later one`, () => {
    expectDiagnostic(
      check(wrap(`        location /m {\n            metrics;\n            ${other}\n        }`)),
      {
        code: 'conflict',
        line: 6,
        col: 13,
        message: [`location "/m" has ${message}`],
        hint: 'keep one',
      },
    );
  });

test('no page location unless configured', () => {
  const r = check(wrap('        location / { return 200; }'));
  expectClean(r);
  assert.equal(r.config!.http!.servers[0]!.locations[0]!.page, undefined);
});

test('the page directives take no argument', () => {
  const r = check(wrap('        location /m { metrics on; }'));
  assert.ok(
    r.diagnostics.some((d) => d.severity === 'error' && d.line === 4),
    JSON.stringify(r.diagnostics),
  );
});
