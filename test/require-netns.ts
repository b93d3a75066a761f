/**
 * What a test does when this host cannot build namespace topologies: skip
 * with the reason printed, except under CI=true where a missing capability is
 * a failure (CI runs as root and must run every test). Test-only: shipped code
 * asks `netnsAvailable()` and decides for itself.
 */
import type { TestContext } from 'node:test';
import { netnsAvailable } from '../src/netns/capability.js';

/**
 * Call at the top of a test that needs namespaces. Returns true when the test
 * may go on; otherwise it has skipped the test (or, under CI=true, thrown).
 */
export function requireNetns(t: TestContext): boolean {
  const cap = netnsAvailable();
  if (cap.ok) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true: this test must run, but ${cap.reason}`);
  process.stderr.write(`# skipped ${t.name}: ${cap.reason}\n`);
  t.skip(cap.reason);
  return false;
}
