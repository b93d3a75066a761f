/**
 * The pure half of keepwire probe: where to place idle durations, what the
 * evidence brackets, and which limits the command enforces. No sockets here.
 */

/**
 * Open connections at once, the probe's own and its --verify-keepalive ones.
 * Each is one file descriptor here and one connection on the target; 1000
 * stays far below common open-file limits (20,000 on keepwire's CI machines)
 * and below what a small service accepts without alarm.
 */
export const MAX_CONNECTIONS = 1000;
export const DEFAULT_CONNECTIONS = 64;
/** Connections held with a short keepalive to see the server's own idle close behind a middlebox. */
export const WATCH_CONNECTIONS = 2;
/** Connections held per --verify-keepalive spec. */
export const VERIFY_CONNECTIONS_PER_SPEC = 2;
/** The grid needs a few points to bracket anything. */
export const MIN_GRID_CONNECTIONS = 4;
/** Dormant keepalive idle for connections probed with keepalive probes: TCP_KEEPIDLE's maximum. */
export const MAX_IDLE_MS = 32_767_000;

/**
 * Grid steps are this fraction of 2·precision, so that the midpoint of two
 * neighbouring points is within precision of T even with a few milliseconds of
 * timer jitter on either side.
 */
const STEP_FRACTION = 0.9;

export function gridStep(precisionMs: number): number {
  return Math.max(1, Math.floor(2 * precisionMs * STEP_FRACTION));
}

/**
 * The first round's idle durations: `count` points from min to max, linear
 * (one step apart) at the low end and geometric above, with the ratio chosen
 * so that the last point is max. When the range needs fewer points at one step
 * apart, fewer are returned: then one round is enough.
 */
export function planGrid(minMs: number, maxMs: number, count: number, precisionMs: number): number[] {
  const step = gridStep(precisionMs);
  const linearPoints = Math.ceil((maxMs - minMs) / step) + 1;
  if (linearPoints <= count) {
    const points: number[] = [];
    for (let d = minMs; d < maxMs; d += step) points.push(d);
    points.push(maxMs);
    return points;
  }
  const pointsFor = (ratio: number): number => {
    let d = minMs;
    let n = 1;
    while (d < maxMs) {
      d += Math.max(d * (ratio - 1), step);
      n++;
    }
    return n;
  };
  // Smallest ratio whose sequence reaches max within `count` points.
  let lo = 1;
  let hi = Math.max(2, maxMs / minMs);
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (pointsFor(mid) <= count) hi = mid;
    else lo = mid;
  }
  const points: number[] = [];
  let d = minMs;
  while (d < maxMs && points.length < count - 1) {
    points.push(Math.round(d));
    d += Math.max(d * (hi - 1), step);
  }
  points.push(maxMs);
  return points;
}

/**
 * Points strictly inside (lowMs, highMs) for a refining round: as many as
 * `available` allows, but no more than needed for one step of spacing.
 */
export function planRefinement(
  lowMs: number,
  highMs: number,
  available: number,
  precisionMs: number,
): number[] {
  const width = highMs - lowMs;
  const needed = Math.ceil(width / gridStep(precisionMs)) - 1;
  const count = Math.max(0, Math.min(available, needed));
  const points: number[] = [];
  for (let i = 1; i <= count; i++) points.push(Math.round(lowMs + (width * i) / (count + 1)));
  return points;
}

/** True when the bracket (low, high] pins T to within ±precision by its midpoint. */
export function bracketDone(lowMs: number, highMs: number, precisionMs: number): boolean {
  return (highMs - lowMs) / 2 <= precisionMs;
}

export type Payload = { kind: 'none' } | { kind: 'http' } | { kind: 'hex'; bytes: Buffer };

/**
 * `none` sends no application byte: the kernel's keepalive probe (a segment
 * with no data) is the use. `http` sends a HEAD request. Anything else is hex.
 */
export function parsePayload(text: string): Payload | { error: string } {
  const lower = text.toLowerCase();
  if (lower === 'none') return { kind: 'none' };
  if (lower === 'http') return { kind: 'http' };
  const hex = lower.startsWith('0x') ? lower.slice(2) : lower;
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-f]+$/.test(hex)) {
    return {
      error: `--payload must be http, none or an even number of hex digits (e.g. 0d0a), got "${text}"`,
    };
  }
  if (hex.length > 2048) return { error: '--payload hex is limited to 1024 bytes: a probe should be small' };
  return { kind: 'hex', bytes: Buffer.from(hex, 'hex') };
}

export function payloadBytes(payload: Payload, host: string): Buffer | undefined {
  if (payload.kind === 'none') return undefined;
  if (payload.kind === 'hex') return payload.bytes;
  return Buffer.from(`HEAD / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: keepwire-probe\r\n\r\n`);
}

export interface Target {
  host: string;
  port: number;
}

/** HOST:PORT, [IPv6]:PORT. */
export function parseTarget(text: string): Target | { error: string } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) return { error: `expected HOST:PORT (or [IPv6]:PORT), got "${text}"` };
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    return { error: `port must be 1-65535, got "${m[2]}"` };
  return { host: m[1]!, port };
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
