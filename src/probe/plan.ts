/**
 * The pure half of keepwire probe: where to place idle durations, what the
 * evidence brackets, and which limits the command enforces. No sockets here.
 */
import { isIP } from 'node:net';

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

/**
 * The bytes of one use. For `http`: a `HEAD /` that an HTTP/1.1 server answers
 * and keeps the connection open after (no `Connection: close`, no body). The
 * Host header is `host[:port]` as RFC 9110 §7.2 wants it: an IPv6 literal in
 * brackets without its zone (nginx answers a bare `Host: ::1` with 400 and
 * closes), the port unless it is 80.
 */
export function payloadBytes(payload: Payload, host: string, port: number): Buffer | undefined {
  if (payload.kind === 'none') return undefined;
  if (payload.kind === 'hex') return payload.bytes;
  const name = isIP(host) === 6 ? `[${host.replace(/%.*$/, '')}]` : host;
  const authority = port === 80 ? name : `${name}:${port}`;
  return Buffer.from(
    `HEAD / HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: keepwire-probe\r\nAccept: */*\r\n\r\n`,
  );
}

/** What an HTTP server answered to the probe's HEAD request (`--payload http`). */
export interface HttpAnswer {
  /** The status line, e.g. `HTTP/1.1 200 OK`. */
  statusLine: string;
  status: number;
  /** Whether the server left the connection open for another request (RFC 9112 §9.3). */
  keepAlive: boolean;
}

/**
 * Parses a response head (everything up to the blank line). Undefined when the
 * bytes are not an HTTP/1.x response head.
 */
export function parseHttpAnswer(head: string): HttpAnswer | undefined {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const tokens: string[] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'connection')
      tokens.push(
        ...line
          .slice(colon + 1)
          .split(',')
          .map((t) => t.trim().toLowerCase()),
      );
  }
  const keepAlive = m[1] === '1' ? !tokens.includes('close') : tokens.includes('keep-alive');
  return { statusLine: lines[0]!, status: Number(m[2]), keepAlive };
}

export interface Target {
  host: string;
  port: number;
}

function parsePort(text: string, target: string): number | { error: string } {
  if (!/^\d{1,5}$/.test(text))
    return { error: `port must be a number 1-65535, got "${text}" in "${target}"` };
  const port = Number(text);
  if (port < 1 || port > 65535) return { error: `port must be 1-65535, got "${text}"` };
  return port;
}

/**
 * HOST:PORT, IPV4:PORT or [IPV6]:PORT (RFC 3986 authority form; an IPv6 zone
 * as in [fe80::1%eth0]:22 is accepted). An IPv6 address without brackets is
 * refused with the bracketed form as the hint: in `2001:db8::1:443` nobody can
 * tell where the address ends.
 */
export function parseTarget(text: string): Target | { error: string } {
  const expected = 'expected HOST:PORT, IPV4:PORT or [IPV6]:PORT';
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return { error: `${expected}: "${text}" has no closing "]"` };
    const host = text.slice(1, close);
    if (isIP(host) !== 6)
      return {
        error: `"[${host}]" is not an IPv6 address: brackets are only for IPv6 literals (${expected})`,
      };
    const rest = text.slice(close + 1);
    if (rest === '' || rest === ':')
      return { error: `${expected}: "${text}" has no port, e.g. [${host}]:443` };
    if (!rest.startsWith(':')) return { error: `${expected}: unexpected "${rest}" after "]" in "${text}"` };
    const port = parsePort(rest.slice(1), text);
    return typeof port === 'number' ? { host, port } : port;
  }
  const colons = text.split(':').length - 1;
  if (colons > 1) {
    // An unbracketed IPv6 address: say which bracketed forms the user may have meant.
    const last = text.lastIndexOf(':');
    const head = text.slice(0, last);
    const tail = text.slice(last + 1);
    const forms: string[] = [];
    if (isIP(head) === 6 && /^\d{1,5}$/.test(tail)) forms.push(`[${head}]:${tail} if ${tail} is the port`);
    if (isIP(text) === 6) forms.push(`[${text}]:PORT if all of it is the address`);
    if (forms.length === 0)
      return {
        error: `${expected}: "${text}" has more than one ":" (IPv6 addresses go in brackets, e.g. [2001:db8::1]:443)`,
      };
    return { error: `an IPv6 address needs brackets around it, got "${text}": write ${forms.join(', or ')}` };
  }
  if (colons === 0) return { error: `${expected}, got "${text}" (no port)` };
  const [host = '', portText = ''] = text.split(':');
  if (host === '') return { error: `${expected}: "${text}" has no host` };
  if (/[[\]\s/]/.test(host)) return { error: `${expected}: "${host}" is not a host name or address` };
  if (portText === '') return { error: `${expected}: "${text}" has no port` };
  const port = parsePort(portText, text);
  return typeof port === 'number' ? { host, port } : port;
}

/** HOST:PORT as a user would type it back: IPv6 literals in brackets. */
export function formatTarget(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
