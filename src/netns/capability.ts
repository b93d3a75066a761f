/**
 * Whether this process can build namespace topologies, and what tests do when
 * it cannot: skip with the reason printed, except under CI=true where a
 * missing capability is a failure (CI runs as root and must run every test).
 */
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export interface Capability {
  ok: boolean;
  reason?: string;
}

/** Whether `cmd` can be started at all (found on PATH and executable), whatever it prints. */
export function hasCommand(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

let cached: Capability | undefined;

/** Root (CAP_NET_ADMIN in the initial namespace), iproute2 and nftables. */
export function netnsAvailable(): Capability {
  if (cached) return cached;
  if (process.platform !== 'linux')
    cached = { ok: false, reason: `network namespaces need Linux, not ${process.platform}` };
  else if (process.getuid?.() !== 0) {
    cached = { ok: false, reason: 'network namespaces need root (CAP_NET_ADMIN); run as root or with sudo' };
  } else if (!hasCommand('ip'))
    cached = { ok: false, reason: 'the `ip` command is missing: apt-get install iproute2' };
  else if (!hasCommand('nft'))
    cached = { ok: false, reason: 'the `nft` command is missing: apt-get install nftables' };
  else cached = { ok: true };
  return cached;
}

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
