/**
 * `--sysctl host.key=value` shows the system-wide fix, and its limits: the
 * backend-sysctl variant holds with tcp_keepalive_time=1 (its own setting) and
 * fails, visibly, when the user sets a value above the LB idle timeout.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { requireNetns } from '../require-netns.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

async function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [MAIN, 'lab', ...args]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

test('--sysctl backend.net.ipv4.tcp_keepalive_time above the LB idle breaks the system-wide fix: exit 1', async (t) => {
  if (!requireNetns(t)) return;
  const r = await lab(
    'long-request/backend-sysctl',
    '--sysctl',
    'backend.net.ipv4.tcp_keepalive_time=5',
    '--json',
  );
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  const result = report.results[0];
  assert.equal(result.expected, 'response');
  assert.equal(result.observed, 'timeout');
  const whats: string[] = result.timeline.map((e: { what: string }) => e.what);
  assert.ok(
    whats.includes('sysctl net.ipv4.tcp_keepalive_time=5 (--sysctl)'),
    'the setting is in the timeline',
  );
  assert.ok(
    result.timeline.some((e: { kind: string }) => e.kind === 'lb-expired'),
    'the LB forgot the session before the first probe',
  );
});

test('bad --sysctl values are usage errors (exit 2), and non-net keys are refused', async () => {
  for (const value of [
    'backend.tcp_keepalive_time=1',
    'router.net.ipv4.tcp_keepalive_time=1',
    'backend.kernel.panic=1',
    'backend.net.ipv4.x',
  ]) {
    const r = await lab('--sysctl', value);
    assert.equal(r.code, 2, `--sysctl ${value}`);
    assert.match(r.stderr, /HOST\.KEY=VALUE/);
  }
});
