/**
 * The kernel's keepalive defaults, which every socket that does not override
 * them inherits. They are per network namespace, so this reads the namespace
 * of the calling process.
 */
import { readFileSync } from 'node:fs';
import { KeepaliveUnsupportedError } from './sockopt.js';

export interface SystemKeepaliveDefaults {
  /** net.ipv4.tcp_keepalive_time, seconds */
  idle: number;
  /** net.ipv4.tcp_keepalive_intvl, seconds */
  interval: number;
  /** net.ipv4.tcp_keepalive_probes */
  count: number;
}

export const KEEPALIVE_SYSCTLS = {
  idle: 'net.ipv4.tcp_keepalive_time',
  interval: 'net.ipv4.tcp_keepalive_intvl',
  count: 'net.ipv4.tcp_keepalive_probes',
} as const;

export function sysctlPath(name: string): string {
  return `/proc/sys/${name.replaceAll('.', '/')}`;
}

export function readSysctl(name: string): number {
  const text = readFileSync(sysctlPath(name), 'utf8').trim();
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`sysctl ${name} is not a number: "${text}"`);
  return value;
}

export function systemDefaults(): SystemKeepaliveDefaults {
  if (process.platform !== 'linux') {
    throw new KeepaliveUnsupportedError(
      `keepwire: reading keepalive sysctls needs Linux /proc/sys, not ${process.platform}`,
    );
  }
  return {
    idle: readSysctl(KEEPALIVE_SYSCTLS.idle),
    interval: readSysctl(KEEPALIVE_SYSCTLS.interval),
    count: readSysctl(KEEPALIVE_SYSCTLS.count),
  };
}
