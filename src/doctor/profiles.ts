/**
 * Middleboxes that forget idle TCP connections, with the idle timeout and
 * what happens at expiry (DESIGN §6). `--lb NAME` picks one; `--lb NAME=T`
 * overrides its timeout where the product lets operators change it;
 * `--lb-idle T` describes anything else.
 */
import type { Box } from '../config/hazards.js';
import { parseDuration } from '../units/time.js';
import { human } from './findings.js';

/**
 * rst: the box (or the peer it reaches untranslated) answers the next packet
 * with a reset; drop: the next packet vanishes and the sender retransmits
 * until its own timeout; close: an L7 proxy closes its connections;
 * http-error: an L7 proxy answers the client with an error status.
 */
export type Expiry = 'rst' | 'drop' | 'close' | 'http-error';

export interface Middlebox {
  name: string;
  idleSeconds: number;
  expiry: Expiry;
  /**
   * An L7 proxy that keeps idle connections to its backends for reuse: the
   * backend's HTTP keep-alive timeout must outlast this box's idle timeout,
   * or the box reuses a connection the backend is closing (502).
   */
  pools: boolean;
  /** What the timeout is and where the number comes from. */
  note: string;
}

export const PROFILES: Readonly<Record<string, Middlebox>> = {
  lvs: {
    name: 'lvs',
    idleSeconds: 900,
    expiry: 'rst',
    pools: false,
    note: 'LVS/IPVS tcp timeout 900 s by default (ipvsadm --set tcp tcpfin udp = 900 120 300); the classic incident ran 90 s (use --lb lvs=90s); at expiry the entry is removed and the next client packet reaches the director itself and gets a RST',
  },
  f5: {
    name: 'f5',
    idleSeconds: 300,
    expiry: 'rst',
    pools: false,
    note: 'F5 BIG-IP fastL4/TCP profile idle timeout 300 s; reset-on-timeout (on by default) sends a RST to both peers',
  },
  'aws-alb': {
    name: 'aws-alb',
    idleSeconds: 60,
    expiry: 'close',
    pools: true,
    note: 'AWS Application Load Balancer idle timeout 60 s (client side); it pools backend connections, so the backend keep-alive timeout must exceed it or 502s follow',
  },
  'aws-nlb': {
    name: 'aws-nlb',
    idleSeconds: 350,
    expiry: 'rst',
    pools: false,
    note: 'AWS Network Load Balancer TCP idle timeout 350 s (configurable 60-6000 s); the flow is removed silently and the next packet from either side gets a RST',
  },
  'azure-lb': {
    name: 'azure-lb',
    idleSeconds: 240,
    expiry: 'drop',
    pools: false,
    note: 'Azure Load Balancer idle timeout 4 min (4-100 min); silent drop by default, EnableTcpReset sends a RST both ways',
  },
  'gcp-firewall': {
    name: 'gcp-firewall',
    idleSeconds: 600,
    expiry: 'drop',
    pools: false,
    note: 'GCP VPC firewall connection tracking forgets established TCP flows idle for 10 min; later packets are dropped',
  },
  'gcp-cloud-nat': {
    name: 'gcp-cloud-nat',
    idleSeconds: 1200,
    expiry: 'drop',
    pools: false,
    note: 'GCP Cloud NAT TCP established idle timeout 1200 s; the mapping is removed and later packets do not reach the peer',
  },
  'gcp-alb': {
    name: 'gcp-alb',
    idleSeconds: 600,
    expiry: 'close',
    pools: true,
    note: 'GCP external Application Load Balancer keeps backend connections 600 s; backends need a keep-alive timeout above 600 s or 502s follow',
  },
  cloudflare: {
    name: 'cloudflare',
    idleSeconds: 100,
    expiry: 'http-error',
    pools: false,
    note: 'Cloudflare proxy read timeout 100 s: an origin silent for longer gets the client an HTTP 524',
  },
  'linux-conntrack': {
    name: 'linux-conntrack',
    idleSeconds: 432_000,
    expiry: 'drop',
    pools: false,
    note: 'Linux conntrack nf_conntrack_tcp_timeout_established default 432000 s (5 days); NAT and "ct state" rules stop matching the forgotten flow',
  },
};

export class ProfileError extends Error {
  override name = 'ProfileError';
}

/** Whole seconds from an nginx time value; refuses sub-second values, which no middlebox uses. */
export function parseSeconds(text: string, what: string): number {
  const parsed = parseDuration(text.trim());
  if (!parsed.ok) throw new ProfileError(`${what}: ${parsed.error.message}`);
  if (parsed.value <= 0 || parsed.value % 1000 !== 0) {
    throw new ProfileError(`${what}: "${text}" must be a positive whole number of seconds`);
  }
  return parsed.value / 1000;
}

/** `aws-nlb` or `aws-nlb=600s`. */
export function middleboxFromArg(arg: string): Middlebox {
  const eq = arg.indexOf('=');
  const name = (eq === -1 ? arg : arg.slice(0, eq)).trim();
  const profile = PROFILES[name];
  if (!profile) {
    throw new ProfileError(
      `unknown load balancer profile "${name}"; known: ${Object.keys(PROFILES).join(', ')}`,
    );
  }
  if (eq === -1) return profile;
  return { ...profile, idleSeconds: parseSeconds(arg.slice(eq + 1), `--lb ${name}`) };
}

export function customMiddlebox(idleSeconds: number): Middlebox {
  return {
    name: 'lb',
    idleSeconds,
    expiry: 'rst',
    pools: false,
    note: `idle timeout ${idleSeconds} s given with --lb-idle; expiry assumed to reset`,
  };
}

/**
 * An L4 box (reset or drop at expiry) forgets a flow by packets, so TCP
 * keepalive probes keep it; an L7 proxy's idle timeout counts data, so they do
 * not (for it, the fix is the backend's HTTP keep-alive timeout above its idle).
 */
export function isL4(box: Middlebox): boolean {
  return box.expiry === 'rst' || box.expiry === 'drop';
}

/** The middlebox that forgets idle connections first: every keepalive must beat it. */
export function tightest(boxes: readonly Middlebox[]): Middlebox | undefined {
  let best: Middlebox | undefined;
  for (const box of boxes) if (!best || box.idleSeconds < best.idleSeconds) best = box;
  return best;
}

/** The failure an expired idle connection turns into, for `why` sentences. */
export function expiryFailure(box: Middlebox): string {
  switch (box.expiry) {
    case 'rst':
      return `${box.name} answers the next packet with a reset (ECONNRESET)`;
    case 'drop':
      return `${box.name} silently drops the next packets, so the sender hangs until its own timeout`;
    case 'close':
      return `${box.name} closes the connection`;
    case 'http-error':
      return `${box.name} gives the client an HTTP 524`;
  }
}

/** A middlebox as the hazard rules of config/hazards.ts take it. */
export function hazardBox(m: Middlebox): Box {
  return {
    label: `${m.name}'s idle timeout ${human(m.idleSeconds)}`,
    idleMs: m.idleSeconds * 1000,
    l4: isL4(m),
    pools: m.pools,
    failure: expiryFailure(m),
    name: m.name,
  };
}
