/**
 * What keepalive settings follow from a load balancer's idle timeout, and what
 * a dead peer costs with a given set of settings.
 */
import { formatDuration } from '../units/time.js';
import { formatSoKeepalive, KERNEL_LIMITS } from './spec.js';
import { KEEPALIVE_SYSCTLS } from './system.js';

/** Linux's default net.ipv4.tcp_keepalive_intvl, what a stock host probes with after the first probe. */
export const STOCK_KEEPALIVE_INTERVAL_S = 75;

export interface DetectionInput {
  idle: number;
  interval: number;
  count: number;
}

/**
 * Seconds from the last packet until the kernel declares an idle peer dead:
 * the first probe after `idle`, then `count` unanswered probes `interval` apart.
 */
export function detectionTime(opts: DetectionInput): number {
  return opts.idle + opts.interval * opts.count;
}

/**
 * Seconds between keepalive packets on a healthy idle connection. The kernel
 * re-arms its keepalive timer with TCP_KEEPINTVL after every probe, answered
 * or not (tcp_keepalive_timer), so probes go out every max(idle, interval):
 * this, not idle alone, must stay under every middlebox's idle timeout.
 */
export function probePeriod(opts: { idle: number; interval: number }): number {
  return Math.max(opts.idle, opts.interval);
}

export interface Recommendation {
  lbIdleTimeout: number;
  margin: number;
  /** TCP keepalive for both legs through the LB, seconds. */
  keepalive: { idle: number; interval: number; count: number };
  /** The same as an nginx `so_keepalive=` value. */
  soKeepalive: string;
  /** Seconds a dead peer goes unnoticed with these settings. */
  detectionTime: number;
  /** The HTTP keep-alive timeout of servers behind the LB: longer than the LB's idle timeout. */
  httpServerKeepaliveTimeout: number;
  /** The idle timeout of client-side connection pools that go through the LB: shorter than it. */
  clientPoolIdleTimeout: number;
  /**
   * Application-level keepalive (HTTP/2 and gRPC PINGs, WebSocket pings):
   * sent every `period` seconds, the same period as the kernel's probes
   * (probePeriod), so an L4 box sees a packet as often either way and an L7
   * box, which counts only data, sees the pings; a peer silent for `timeout`
   * seconds after a ping (interval x count, the kernel's own patience) is dead.
   * A server policing pings must allow one every `serverMinInterval` seconds
   * (half the period, for timer jitter) or it closes the connection with
   * GOAWAY too_many_pings.
   */
  appPing: { period: number; timeout: number; serverMinInterval: number };
  /**
   * The host-wide sysctls for programs that only set SO_KEEPALIVE, against a
   * stock host (interval 75 s): see `sysctlSettings`.
   */
  sysctl: SysctlSetting[];
  /** The rules behind each number, one sentence each. */
  reasoning: string[];
}

export interface SysctlSetting {
  name: string;
  value: number;
}

/**
 * The sysctl lines that make a host's keepalive defaults fit `rec`. Always
 * tcp_keepalive_time; tcp_keepalive_intvl and tcp_keepalive_probes as well
 * whenever the host's interval is not below the LB's idle timeout: probes go
 * out every max(idle, interval), so lowering the idle alone leaves a 75 s
 * interval defeating any LB of 75 s or less.
 */
export function sysctlSettings(
  rec: Pick<Recommendation, 'lbIdleTimeout' | 'keepalive'>,
  hostInterval: number = STOCK_KEEPALIVE_INTERVAL_S,
): SysctlSetting[] {
  const out: SysctlSetting[] = [{ name: KEEPALIVE_SYSCTLS.idle, value: rec.keepalive.idle }];
  if (hostInterval >= rec.lbIdleTimeout) {
    out.push({ name: KEEPALIVE_SYSCTLS.interval, value: rec.keepalive.interval });
    out.push({ name: KEEPALIVE_SYSCTLS.count, value: rec.keepalive.count });
  }
  return out;
}

/** `name = value` lines, as written into /etc/sysctl.d. */
export function sysctlLines(settings: readonly SysctlSetting[]): string[] {
  return settings.map((s) => `${s.name} = ${s.value}`);
}

/**
 * Settings that keep a connection alive across a middlebox that forgets flows
 * idle for `lbIdleTimeout` seconds. `margin` (seconds) is how far before the
 * LB's deadline the first probe is sent; by default a third of the timeout.
 */
export function recommend(lbIdleTimeout: number, options: { margin?: number } = {}): Recommendation {
  if (!Number.isFinite(lbIdleTimeout) || lbIdleTimeout < 2) {
    throw new RangeError(
      `an LB idle timeout below 2 s leaves no room for a keepalive probe (TCP_KEEPIDLE counts whole seconds), got ${lbIdleTimeout}`,
    );
  }
  const lb = Math.floor(lbIdleTimeout);
  const margin = options.margin ?? Math.max(1, Math.round(lb / 3));
  if (!Number.isInteger(margin) || margin < 1 || margin >= lb) {
    throw new RangeError(`margin must be a whole number of seconds in 1..${lb - 1}, got ${margin}`);
  }
  const idle = Math.min(lb - margin, KERNEL_LIMITS.idle.max);
  // A lost probe is retried after `interval`; that retry must still reach the LB in time.
  const interval = Math.max(1, Math.min(75, Math.floor(margin / 2)));
  const count = 3;
  const httpServerKeepaliveTimeout = lb + Math.max(5, Math.ceil(lb / 10));
  const clientPoolIdleTimeout = lb - margin;
  const keepalive = { idle, interval, count };
  const pingPeriod = probePeriod(keepalive);
  const appPing = {
    period: pingPeriod,
    timeout: Math.max(1, interval * count),
    serverMinInterval: Math.max(1, Math.floor(pingPeriod / 2)),
  };
  const fmt = (s: number) => formatDuration(s * 1000);
  return {
    lbIdleTimeout: lb,
    margin,
    keepalive,
    soKeepalive: formatSoKeepalive({ enable: true, ...keepalive }),
    detectionTime: detectionTime(keepalive),
    httpServerKeepaliveTimeout,
    clientPoolIdleTimeout,
    appPing,
    sysctl: sysctlSettings({ lbIdleTimeout: lb, keepalive }),
    reasoning: [
      `TCP keepalive idle ${fmt(idle)} < LB idle ${fmt(lb)}: the first probe refreshes the LB's session ${fmt(margin)} before it would be forgotten.`,
      `Probe interval ${fmt(interval)} <= half the margin: if one probe is lost, the retry still arrives before the LB's deadline; and since the kernel waits the interval after every probe, a healthy idle connection sends one every max(idle, interval) = ${fmt(probePeriod(keepalive))} < ${fmt(lb)}.`,
      `Count ${count}: a dead peer is noticed after ${fmt(detectionTime(keepalive))} (idle + interval x count) instead of the kernel default 2h11m15s.`,
      `HTTP server keep-alive timeout ${fmt(httpServerKeepaliveTimeout)} > LB idle ${fmt(lb)}: the LB, which pools connections to the server, closes idle ones first, so it never reuses one the server is closing.`,
      `Client pool idle timeout ${fmt(clientPoolIdleTimeout)} < LB idle ${fmt(lb)}: the client drops idle pooled connections before the LB forgets them, so a reused connection is never a dead one.`,
      `Application pings (HTTP/2, gRPC, WebSocket) every ${fmt(appPing.period)}, the kernel's probe period, answered within ${fmt(appPing.timeout)}: they reach L7 boxes too, which count data and ignore TCP probes; a server must accept a ping every ${fmt(appPing.serverMinInterval)}.`,
    ],
  };
}
