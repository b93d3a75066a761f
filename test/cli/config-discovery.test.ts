/**
 * Configuration discovery, as nginx finds its compiled-in path: `-c FILE`,
 * else `$KEEPWIRE_CONF`, else /etc/keepwire/keepwire.conf; and `check -q`,
 * which the systemd unit's ExecStartPre runs (errors only).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_CONFIG } from '../../src/cli/config-path.js';
import { MAIN, ROOT, tempDir } from '../support.js';

const dir = tempDir('keepwire-discovery-');
const EXAMPLE = path.join(ROOT, 'examples', 'keepwire.conf');

function keepwire(env: Record<string, string | undefined>, ...args: string[]) {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    cwd: dir,
    env: merged,
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function conf(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

const STREAM_ERROR =
  'stream {\n    server {\n        listen 80, so_keepalive=60s::;\n        proxy_pass 127.0.0.1:5432;\n    }\n}\n';
const BROKEN = conf('broken.conf', STREAM_ERROR);
const WARN = conf(
  'warn.conf',
  'lb_idle_timeout 60s;\nhttp {\n    server {\n        keepalive_timeout 30s;\n        location / { return 204; }\n    }\n}\n',
);

describe('configuration discovery: -c, then $KEEPWIRE_CONF, then /etc/keepwire/keepwire.conf', () => {
  const noDefault = existsSync(DEFAULT_CONFIG)
    ? `${DEFAULT_CONFIG} exists on this machine (the "nothing found" case needs it absent)`
    : false;

  for (const command of ['check', 'serve']) {
    it(`${command} without any configuration names every place it looked at; exit 1, no stack`, {
      skip: noDefault,
    }, () => {
      const r = keepwire({ KEEPWIRE_CONF: undefined }, command);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(
        r.stderr,
        `keepwire: no configuration file: looked at -c (not given), $KEEPWIRE_CONF (not set), ${DEFAULT_CONFIG} (no such file)\n` +
          `hint: pass -c FILE, set KEEPWIRE_CONF=FILE, or create ${DEFAULT_CONFIG}\n`,
      );
      assert.equal(r.stdout, '');
    });
  }

  it('an empty $KEEPWIRE_CONF counts as not set', { skip: noDefault }, () => {
    const r = keepwire({ KEEPWIRE_CONF: '' }, 'check');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\$KEEPWIRE_CONF \(not set\)/);
  });

  it('check reads $KEEPWIRE_CONF when -c is not given', () => {
    const r = keepwire({ KEEPWIRE_CONF: EXAMPLE }, 'check');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `keepwire check: ${EXAMPLE}: syntax is ok, test is successful (0 errors, 0 warnings)\n`,
    );
  });

  it('-c wins over $KEEPWIRE_CONF', () => {
    const r = keepwire({ KEEPWIRE_CONF: BROKEN }, 'check', '-c', EXAMPLE);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${EXAMPLE.replaceAll('.', '\\.')}: syntax is ok`));
  });

  it('serve reads $KEEPWIRE_CONF too: its errors name that file', () => {
    const r = keepwire({ KEEPWIRE_CONF: BROKEN }, 'serve');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${BROKEN.replaceAll('.', '\\.')}:3:18: error: listen`));
  });

  it('a $KEEPWIRE_CONF naming a missing file fails on that file, with no fallback to the default', () => {
    const missing = path.join(dir, 'missing.conf');
    const r = keepwire({ KEEPWIRE_CONF: missing }, 'check');
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`${missing.replaceAll('.', '\\.')}: error: cannot read configuration file: no such file`),
    );
    assert.doesNotMatch(r.stderr, /\/etc\/keepwire/);
  });

  it('--help of check and serve shows where the configuration comes from', () => {
    for (const command of ['check', 'serve']) {
      const r = keepwire({}, command, '--help');
      assert.equal(r.code, 0);
      assert.match(
        r.stdout,
        /-c, --config <file>\s+configuration file \(default: \$KEEPWIRE_CONF, else\s+\/etc\/keepwire\/keepwire\.conf\)/,
      );
    }
  });
});

describe('check -q (errors only, for ExecStartPre)', () => {
  it('prints nothing for a valid file, warnings included; exit 0', () => {
    const loud = keepwire({}, 'check', '-c', WARN);
    assert.equal(loud.code, 0);
    assert.match(loud.stderr, /warning/, 'the file does have a warning');
    const r = keepwire({}, 'check', '-q', '-c', WARN);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '');
  });

  it('still prints the errors and the failed test line; exit 1', () => {
    const r = keepwire({}, 'check', '--quiet', '-c', BROKEN);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /broken\.conf:3:18: error: listen/);
    assert.match(r.stderr, /test failed \(1 error, 0 warnings\)/);
    assert.equal(r.stdout, '');
  });

  it('with --strict, warnings fail the test and are shown', () => {
    const r = keepwire({}, 'check', '-q', '--strict', '-c', WARN);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /warning/);
    assert.match(r.stderr, /test failed \(0 errors, 1 warning/);
  });
});
