/**
 * Time values keepwire runs as timers are refused above 2^31-1 ms (24.8
 * days): Node turns a longer setTimeout into 1 ms, so `worker_shutdown_timeout
 * 30d` reset every request in flight 1 ms after SIGTERM while `check` said
 * the file was fine. Lifetimes compared with the clock (`keepalive_time`) keep
 * any length.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MAIN, tempDir } from '../support.js';
import { check, expectDiagnostic } from './support.js';

test('check refuses worker_shutdown_timeout 30d with file:line:col and a hint; exit 1', (t) => {
  const dir = tempDir('keepwire-timer-', t);
  const file = path.join(dir, 'k.conf');
  writeFileSync(
    file,
    'worker_shutdown_timeout 30d;\nstream {\n    server {\n        listen 127.0.0.1:7000;\n        proxy_pass 127.0.0.1:7001;\n    }\n}\n',
  );
  const r = spawnSync(process.execPath, [MAIN, 'check', '-c', file], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stdout);
  assert.match(
    r.stderr,
    new RegExp(
      `${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:25: error: worker_shutdown_timeout: time value "30d" is too long for a timer`,
    ),
  );
  assert.match(r.stderr, /hint: .*24d or less/);
});

test('every timer directive stops at 2^31-1 ms; the longest accepted value is exactly that', () => {
  const cases: [string, string][] = [
    ['worker_shutdown_timeout 25d;\n', '25d'],
    ['stream { server { listen 127.0.0.1:7000; proxy_pass 127.0.0.1:7001; proxy_timeout 4w; } }\n', '4w'],
    ['http { server { listen 127.0.0.1:7000; keepalive_timeout 1M; location / { return 204; } } }\n', '1M'],
    [
      'http { server { listen 127.0.0.1:7000; location / { proxy_pass http://127.0.0.1:7001; proxy_read_timeout 2147483648ms; } } }\n',
      '2147483648ms',
    ],
  ];
  for (const [text, value] of cases) {
    const col = text.indexOf(` ${value};`) + 2;
    expectDiagnostic(check(text), {
      code: 'bad-value',
      line: 1,
      col,
      message: ['too long for a timer', value],
    });
  }
  const longest = check(
    'worker_shutdown_timeout 24d20h31m23s647ms;\nhttp { keepalive_time 1y; server { listen 127.0.0.1:7000; location / { return 204; } } }\n',
  );
  assert.deepEqual(
    longest.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  assert.equal(longest.config?.shutdownTimeoutMs, 2 ** 31 - 1);
});
