/**
 * Whether this process can build namespace topologies (tests turn a missing
 * capability into a skip or a CI failure with test/require-netns.ts).
 */
import { execFileSync } from 'node:child_process';

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
