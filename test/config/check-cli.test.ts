/** `keepwire check` through the real CLI entry point: output formats and exit codes. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Diagnostic } from '../../src/config/index.js';
import { MAIN, ROOT, tempDir } from '../support.js';

const dir = tempDir('keepwire-check-');

function keepwire(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', cwd: dir });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function conf(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

const SEED = conf(
  'seed.conf',
  'stream {\n    server {\n        listen 80, so_keepalive=60s::;\n        proxy_pass 127.0.0.1:5432;\n    }\n}\n',
);
const WARN = conf(
  'warn.conf',
  'lb_idle_timeout 60s;\nhttp {\n    server {\n        keepalive_timeout 30s;\n        location / { return 204; }\n    }\n}\n',
);

describe('keepwire check', () => {
  it('accepts the example: exit 0 and a success line', () => {
    const r = keepwire('check', '-c', path.join(ROOT, 'examples', 'keepwire.conf'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /test is successful \(0 errors, 0 warnings\)/);
    assert.equal(r.stderr, '');
  });

  it('prints FILE:LINE:COL: error: message, the source line with a caret, and a hint; exit 1', () => {
    const r = keepwire('check', '-c', SEED);
    assert.equal(r.code, 1);
    const lines = r.stderr.split('\n');
    assert.equal(
      lines[0],
      `${SEED}:3:18: error: listen: unexpected "," in "80,": nginx separates listen parameters with spaces, not commas`,
    );
    assert.equal(lines[1], '  3 |         listen 80, so_keepalive=60s::;');
    assert.equal(lines[2], '    |                  ^');
    assert.equal(lines[3], '  hint: write: listen 80 so_keepalive=60s::;');
    assert.match(r.stderr, /test failed \(1 error, 0 warnings\)/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('--json prints the diagnostics array on stdout', () => {
    const r = keepwire('check', '-c', SEED, '--json');
    assert.equal(r.code, 1);
    const diags = JSON.parse(r.stdout) as Diagnostic[];
    assert.deepEqual(diags, [
      {
        severity: 'error',
        code: 'comma-separator',
        message: 'listen: unexpected "," in "80,": nginx separates listen parameters with spaces, not commas',
        file: SEED,
        line: 3,
        col: 18,
        hint: 'write: listen 80 so_keepalive=60s::;',
      },
    ]);
  });

  it('warnings pass, and fail with --strict', () => {
    const plain = keepwire('check', '-c', WARN);
    assert.equal(plain.code, 0);
    assert.match(
      plain.stderr,
      /warn\.conf:4:9: warning: keepalive_timeout 30s is not above lb_idle_timeout 1m/,
    );
    assert.match(plain.stdout, /0 errors, 1 warning\)/);
    assert.equal(keepwire('check', '-c', WARN, '--strict').code, 1);
    const json = keepwire('check', '-c', WARN, '--json', '--strict');
    assert.equal(json.code, 1);
    assert.deepEqual(
      (JSON.parse(json.stdout) as Diagnostic[]).map((d) => [d.severity, d.code, d.line, d.col]),
      [['warning', 'hazard-keepalive-timeout-below-lb', 4, 9]],
    );
  });

  it("refuses nginx's access_log path form at FILE:LINE:COL with the hint; access_log off passes", () => {
    const file = conf(
      'access-log.conf',
      'http {\n    server {\n        listen 127.0.0.1:8080;\n        location / {\n            return 204;\n            access_log /var/log/nginx/access.log main;\n        }\n    }\n}\n',
    );
    const r = keepwire('check', '-c', file);
    assert.equal(r.code, 1);
    const lines = r.stderr.split('\n');
    assert.equal(
      lines[0],
      `${file}:6:24: error: access_log: logging to a file ("/var/log/nginx/access.log") is not supported by keepwire`,
    );
    assert.equal(lines[1], '  6 |             access_log /var/log/nginx/access.log main;');
    assert.equal(lines[2], `    | ${' '.repeat(23)}^`);
    assert.equal(
      lines[3],
      '  hint: keepwire writes its access log as JSON lines on standard output; redirect that, or use access_log off',
    );
    assert.match(r.stderr, /test failed \(1 error, 0 warnings\)/);
    const off = conf(
      'access-log-off.conf',
      'http {\n    access_log on;\n    server {\n        listen 127.0.0.1:8080;\n        location / { return 204; access_log off; }\n    }\n}\n',
    );
    const ok = keepwire('check', '-c', off);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /test is successful \(0 errors, 0 warnings\)/);
  });

  it('an unreadable file is a failed check (exit 1), as with nginx -t', () => {
    const r = keepwire('check', '-c', path.join(dir, 'nope.conf'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.conf: error: cannot read configuration file: no such file/);
    const json = keepwire('check', '-c', dir, '--json');
    assert.equal(json.code, 1);
    assert.equal((JSON.parse(json.stdout) as Diagnostic[])[0]!.code, 'file-unreadable');
  });

  // Without -c, check discovers its configuration: test/cli/config-discovery.test.ts.
  it('usage errors exit 2: unknown option', () => {
    assert.equal(keepwire('check', '-c', SEED, '--bogus').code, 2);
  });

  it('--help documents the exit codes', () => {
    const r = keepwire('check', '--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--strict/);
    assert.match(r.stdout, /Exit status: 0 valid, 1 invalid/);
  });
});
