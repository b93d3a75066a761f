/**
 * The host's own keepalive defaults and conntrack timer, read from /proc/sys
 * of the current network namespace (both are per namespace). Every socket
 * that turns keepalive on without its own values inherits these, which is
 * how `so_keepalive=on` and `proxy_socket_keepalive on` end up probing after
 * two hours.
 */
import { existsSync, readFileSync } from 'node:fs';
import {
  detectionTime,
  probePeriod,
  recommend,
  sysctlLines,
  sysctlSettings,
} from '../keepalive/recommend.js';
import { KEEPALIVE_SYSCTLS, type SystemKeepaliveDefaults, sysctlPath } from '../keepalive/system.js';
import type { Dependent, Finding } from './findings.js';
import { human } from './findings.js';
import { expiryFailure, isL4, type Middlebox } from './profiles.js';

export const CONNTRACK_ESTABLISHED = 'net.netfilter.nf_conntrack_tcp_timeout_established';

export interface HostState {
  keepalive: SystemKeepaliveDefaults;
  /** Absent when conntrack is not loaded in this namespace. */
  conntrackEstablished?: number;
}

function readNumber(path: string): number {
  const text = readFileSync(path, 'utf8').trim();
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`${path} is not a number: "${text}"`);
  return n;
}

export function readHost(procSys = '/proc/sys'): HostState {
  const at = (name: string) => sysctlPath(name).replace(/^\/proc\/sys/, procSys);
  const state: HostState = {
    keepalive: {
      idle: readNumber(at(KEEPALIVE_SYSCTLS.idle)),
      interval: readNumber(at(KEEPALIVE_SYSCTLS.interval)),
      count: readNumber(at(KEEPALIVE_SYSCTLS.count)),
    },
  };
  const ct = at(CONNTRACK_ESTABLISHED);
  if (existsSync(ct)) state.conntrackEstablished = readNumber(ct);
  return state;
}

/**
 * Findings about the host. `dependents` are the places that inherit the
 * kernel's keepalive values (an nginx `so_keepalive=on`, a socket with
 * keepalive on): with one of them, a long kernel default is an error, since
 * something relies on it; without, it waits for the next program that does.
 */
export function hostFindings(host: HostState, lb: Middlebox | undefined, dependents: Dependent[]): Finding[] {
  const out: Finding[] = [];
  const ka = host.keepalive;
  // An L7 proxy's idle timer counts data, not TCP keepalive probes: the
  // kernel's defaults cannot keep a connection through it, so no sysctl advice.
  if (lb && isL4(lb)) {
    const period = probePeriod(ka);
    if (period >= lb.idleSeconds) {
      const rec = recommend(lb.idleSeconds);
      const idleLate = ka.idle >= lb.idleSeconds;
      const intervalLate = ka.interval >= lb.idleSeconds;
      const intervalIsLate = intervalLate && !idleLate;
      const name = intervalIsLate ? KEEPALIVE_SYSCTLS.interval : KEEPALIVE_SYSCTLS.idle;
      const value = intervalIsLate ? ka.interval : ka.idle;
      // Only places that take a late value from the kernel rely on it:
      // so_keepalive=60s:: sets its own idle and inherits the interval and count.
      const relying = dependents.filter(
        (d) => (idleLate && d.relies.includes('idle')) || (intervalLate && d.relies.includes('interval')),
      );
      const throughInterval = relying.every((d) => !(idleLate && d.relies.includes('idle')));
      const reliedOn = throughInterval && !intervalIsLate ? KEEPALIVE_SYSCTLS.interval : 'it';
      const users =
        relying.length > 0
          ? `${relying.length === 1 ? '1 place relies' : `${relying.length} places rely`} on ${reliedOn} (first: ${relying[0]!.where})`
          : intervalIsLate
            ? 'every socket that enables keepalive without its own interval inherits it'
            : 'every socket that enables keepalive without its own idle time inherits it';
      const fix = sysctlSettings(rec, ka.interval).filter(
        (s) => s.name !== KEEPALIVE_SYSCTLS.idle || idleLate,
      );
      out.push({
        severity: relying.length > 0 ? 'error' : 'warning',
        code: intervalIsLate ? 'kernel-keepalive-intvl-too-long' : 'kernel-keepalive-too-long',
        layer: 'host',
        message: `${name} = ${value}: an idle connection is probed every max(${ka.idle}, ${ka.interval}) = ${human(period)}, not below ${lb.name}'s idle timeout ${human(lb.idleSeconds)}; ${users}`,
        evidence: { where: sysctlPath(name), path: sysctlPath(name), value: String(value) },
        why: `${lb.name} forgets the idle connection after ${human(lb.idleSeconds)}, before the first probe, and ${expiryFailure(lb)}; a dead peer goes unnoticed for ${human(detectionTime(ka))}.`,
        fix: sysctlLines(fix).join('\n'),
      });
    }
  }
  const ct = host.conntrackEstablished;
  if (ct !== undefined && ct <= probePeriod(ka)) {
    const path = sysctlPath(CONNTRACK_ESTABLISHED);
    out.push({
      severity: 'warning',
      code: 'conntrack-forgets-before-probe',
      layer: 'host',
      message: `${CONNTRACK_ESTABLISHED} = ${ct}: this host's conntrack forgets an idle established flow after ${human(ct)}, before the kernel's default keepalive probe at ${human(probePeriod(ka))}`,
      evidence: { where: path, path, value: String(ct) },
      why: `connections NATed or filtered by "ct state" on this host (containers, kube-proxy, masquerade) stop matching after ${human(ct)} idle and their next packets are dropped or reset.`,
      fix: `${CONNTRACK_ESTABLISHED} = ${Math.max(432_000, probePeriod(ka) + 3600)}`,
    });
  }
  return out;
}
