import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { MAIN } from '../support.js';

const PKG = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

function keepwire(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--version prints the package version', () => {
  const r = keepwire('--version');
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), PKG.version);
});

test('--help lists the commands and exits 0', () => {
  const r = keepwire('--help');
  assert.equal(r.code, 0);
  for (const cmd of ['selfcheck', 'recommend']) assert.match(r.stdout, new RegExp(`\\b${cmd}\\b`));
});

test('usage errors exit 2 with a message and no stack trace', () => {
  for (const args of [
    [],
    ['frobnicate'],
    ['selfcheck', '--bogus'],
    ['recommend'],
    ['recommend', '--lb-idle', '90x'],
  ]) {
    const r = keepwire(...args);
    assert.equal(r.code, 2, `keepwire ${args.join(' ')} exits 2`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.match(keepwire('recommend', '--lb-idle', '90x').stderr, /unknown time unit "x"/);
  assert.match(keepwire('recommend', '--lb-idle', '1s').stderr, /below 2 s leaves no room/);
});

test('selfcheck --lb-idle below 2 s is a one-line usage error, not a stack trace', () => {
  for (const lbIdle of ['1s', '0s']) {
    const r = keepwire('selfcheck', '--lb-idle', lbIdle);
    assert.equal(r.code, 2, `selfcheck --lb-idle ${lbIdle} exits 2: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.match(r.stderr, /--lb-idle.*below 2 s leaves no room for a keepalive probe/);
    assert.equal(r.stdout, '');
  }
});

test('selfcheck --spec reports a bad so_keepalive with its column', () => {
  const r = keepwire('selfcheck', '--spec', '60s:0:3');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /keepalive interval must be at least 1s, got 0s \(column 5\)/);
});

test('selfcheck --json: every setting reaches the kernel and reads back', () => {
  const r = keepwire('selfcheck', '--json', '--spec', '20s:5s:4', '--user-timeout', '7s');
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, true);
  assert.deepEqual(
    report.checks.map((c: { socket: string }) => c.socket),
    ['connected', 'before-connect', 'accepted'],
  );
  for (const c of report.checks) {
    assert.deepEqual(c.kernel, { enabled: true, idle: 20, interval: 5, count: 4, userTimeout: 7000 });
  }
  assert.equal(typeof report.system.idle, 'number');
  assert.ok(report.nodeInternals.length > 0);
  for (const i of report.nodeInternals) assert.equal(i.available, true, `${i.name}: ${i.detail}`);
});

test('selfcheck human output names the kernel defaults and the fix for the LB', () => {
  const r = keepwire('selfcheck', '--lb-idle', '90s');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /net\.ipv4\.tcp_keepalive_time\s+=\s+\d+/);
  assert.match(r.stdout, /so_keepalive=60s:15s:3/);
  assert.match(r.stdout, /Node internals keepwire relies on/);
  assert.match(r.stdout, /available +_handle\.fd/);
  assert.match(r.stdout, /selfcheck: ok/);
});

test('recommend --json for an AWS NLB (350 s)', () => {
  const r = keepwire('recommend', '--lb-idle', '350s', '--json');
  assert.equal(r.code, 0);
  const rec = JSON.parse(r.stdout);
  assert.equal(rec.lbIdleTimeout, 350);
  assert.ok(rec.keepalive.idle < 350);
});
