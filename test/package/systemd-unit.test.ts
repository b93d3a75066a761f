/**
 * packaging/keepwire.service: `systemd-analyze verify` accepts it (it only
 * warns on unknown keys and exits 0, so stderr must be empty too; it needs the
 * ExecStart binary to exist, so the check runs on a copy naming a stand-in
 * executable), and its settings keep the promises the unit makes: check
 * before start, SIGHUP reload, graceful SIGQUIT stop that systemd does not cut
 * short, hardening.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { defaultOf, lookup } from '../../src/config/index.js';
import { parseDuration } from '../../src/units/time.js';
import { ROOT, tempDir } from '../support.js';

const UNIT = path.join(ROOT, 'packaging', 'keepwire.service');
const text = readFileSync(UNIT, 'utf8');

/** Every `Key=value` of the unit, in order (repeated keys kept). */
function settings(unit: string): Array<[string, string]> {
  return unit
    .split('\n')
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
}
const all = settings(text);
const one = (key: string) => {
  const values = all.filter(([k]) => k === key).map(([, v]) => v);
  assert.equal(values.length, 1, `${key} is set once`);
  return values[0] as string;
};

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const missing =
  analyze.error === undefined ? false : 'systemd-analyze is not installed (Debian package: systemd)';
if (missing && process.env.CI === 'true') throw new Error(`CI=true: ${missing}`);

/** `systemd-analyze verify` of the unit text, with /usr/bin/keepwire replaced by an executable that exists. */
function verify(unitText: string) {
  const dir = tempDir('keepwire-unit-');
  const bin = path.join(dir, 'keepwire');
  writeFileSync(bin, '#!/bin/sh\nexit 0\n');
  chmodSync(bin, 0o755);
  const file = path.join(dir, 'keepwire.service');
  writeFileSync(file, unitText.replaceAll('/usr/bin/keepwire', bin));
  // --man=no: the man page is checked where it is installed (test/package/deb.test.ts).
  return spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8', timeout: 60_000 });
}

describe('systemd unit packaging/keepwire.service', () => {
  it('systemd-analyze verify passes with nothing on stderr', { skip: missing }, () => {
    const r = verify(text);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  });

  it('the verification sees a mistake: an unknown key is reported on stderr', { skip: missing }, () => {
    const r = verify(text.replace('KillMode=mixed', 'KillMode=mixed\nKillSignall=SIGQUIT'));
    assert.match(r.stderr, /Unknown key 'KillSignall'/);
  });

  it('checks the configuration before start and before reload; reload is SIGHUP', () => {
    assert.equal(one('ExecStartPre'), '/usr/bin/keepwire check -q');
    assert.equal(one('ExecStart'), '/usr/bin/keepwire serve');
    assert.deepEqual(
      all.filter(([k]) => k === 'ExecReload').map(([, v]) => v),
      ['/usr/bin/keepwire check -q', '/bin/kill -HUP $MAINPID'],
    );
  });

  it('stops gracefully: SIGQUIT, and systemd waits longer than worker_shutdown_timeout', () => {
    assert.equal(one('KillSignal'), 'SIGQUIT');
    assert.equal(one('KillMode'), 'mixed');
    const directive = lookup('worker_shutdown_timeout', 'main');
    assert.ok(directive);
    const drain = defaultOf(directive) as number;
    const stop = parseDuration(one('TimeoutStopSec'));
    assert.ok(stop.ok);
    assert.ok(
      stop.value > drain + 5000,
      `TimeoutStopSec ${stop.value} ms leaves time after the ${drain} ms drain for the process to exit`,
    );
    assert.equal(one('Restart'), 'on-failure');
  });

  it('runs as the keepwire user with only CAP_NET_BIND_SERVICE and a read-only system', () => {
    assert.equal(one('User'), 'keepwire');
    assert.equal(one('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
    assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('ProtectSystem'), 'strict');
    assert.ok(Number(one('LimitNOFILE')) >= 65536);
    // V8 writes its JIT code: this hardening would crash node.
    assert.ok(!all.some(([k]) => k === 'MemoryDenyWriteExecute'));
  });
});
