/**
 * Parsers for directive argument values. Each returns the value or an error
 * with a 0-based offset inside the argument, so diagnostics can point at the
 * exact character (`so_keepalive=60x::` points at the `x`).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { type KeepaliveSpec, parseSoKeepalive } from '../keepalive/spec.js';
import { MAX_TIMER_MS, parseDuration } from '../units/time.js';
import type { DiagnosticCode } from './diagnostics.js';
import type { Address } from './model.js';

export interface ArgError {
  message: string;
  offset: number;
  hint?: string;
  /** Defaults to `bad-value`. */
  code?: DiagnosticCode;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ArgError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export function bad<T>(message: string, offset: number, hint?: string, code?: DiagnosticCode): Result<T> {
  const error: ArgError = { message, offset };
  if (hint !== undefined) error.hint = hint;
  if (code !== undefined) error.code = code;
  return { ok: false, error };
}

/** Moves an error's offset, for values parsed out of a larger word (`weight=` + `2`). */
export function shifted<T>(result: Result<T>, by: number): Result<T> {
  return result.ok ? result : { ok: false, error: { ...result.error, offset: result.error.offset + by } };
}

export function parseTime(text: string): Result<number> {
  const parsed = parseDuration(text);
  if (parsed.ok) return parsed;
  return bad(parsed.error.message, parsed.error.offset, parsed.error.hint);
}

/**
 * A time value that keepwire runs as a timer: at most MAX_TIMER_MS, which
 * Node would otherwise turn into 1 ms. nginx's timers are 64-bit and take
 * longer values; a timeout over 24 days is no use to anyone, so refusing it
 * costs nothing and never silently fires at once.
 */
export function parseTimer(text: string): Result<number> {
  const parsed = parseTime(text);
  if (!parsed.ok || parsed.value <= MAX_TIMER_MS) return parsed;
  return bad(
    `time value "${text}" is too long for a timer: the longest is 24d20h31m23s647ms (2^31-1 ms)`,
    0,
    "Node's timers cannot run longer (a longer one would fire after 1 ms); write 24d or less",
  );
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** nginx sizes (ngx_parse_size): a byte count with an optional k, m or g suffix, either case. */
export function parseSize(text: string): Result<number> {
  const m = /^([0-9]+)([kKmMgG]?)$/.exec(text);
  if (!m) {
    const digits = /^[0-9]*/.exec(text)![0].length;
    return bad(
      text === '' ? 'empty size' : `invalid size "${text}"`,
      digits === 0 ? 0 : digits,
      'sizes are bytes with an optional k, m or g suffix, e.g. 1m',
    );
  }
  const bytes = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(bytes)) return bad(`size "${text}" is too large`, 0);
  return ok(bytes);
}

export function parseFlag(text: string): Result<boolean> {
  if (text === 'on') return ok(true);
  if (text === 'off') return ok(false);
  return bad(`invalid value "${text}": expected "on" or "off"`, 0, 'flags are written on or off');
}

export function parseInteger(text: string, min: number, max = Number.MAX_SAFE_INTEGER): Result<number> {
  if (!/^[0-9]+$/.test(text)) {
    const at = /[^0-9]/.exec(text)?.index ?? 0;
    return bad(`invalid number "${text}"`, at, `expected a whole number${min > 0 ? ` >= ${min}` : ''}`);
  }
  const n = Number(text);
  if (n < min || n > max) {
    return bad(
      `${text} is out of range`,
      0,
      `expected ${max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min}..${max}`}`,
    );
  }
  return ok(n);
}

/**
 * A comma inside a parameter list is the classic slip (`listen 80, so_keepalive=on;`):
 * nginx takes space-separated parameters and reads `80,` as a host name.
 */
export function commaError<T>(text: string, what: string): Result<T> | undefined {
  const at = text.indexOf(',');
  if (at === -1) return undefined;
  return bad(
    `unexpected "," in "${text}": nginx separates ${what} parameters with spaces, not commas`,
    at,
    `remove the comma, e.g. "${text.slice(0, at)}${text.slice(at + 1) ? ` ${text.slice(at + 1)}` : ''} ..."`,
    'comma-separator',
  );
}

export interface AddressRules {
  /** `listen 80` and `listen *:80`: a port alone means every address. */
  listen?: boolean;
  /** Port used when none is written (`server 10.0.0.1` in an http upstream: 80); absent: a port is required. */
  defaultPort?: number;
}

const HOSTNAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

function parsePort(text: string, offset: number): Result<number> {
  if (!/^[0-9]+$/.test(text)) {
    const at = /[^0-9]/.exec(text)?.index ?? 0;
    return bad(`invalid port "${text}"`, offset + at, 'a port is a number from 1 to 65535');
  }
  const port = Number(text);
  if (port < 1 || port > 65535)
    return bad(`port ${text} is out of range`, offset, 'ports go from 1 to 65535');
  return ok(port);
}

/** `host:port`, `port`, `*:port`, `[::1]:port`; `unix:` paths are refused clearly. */
export function parseAddress(text: string, rules: AddressRules = {}): Result<Address> {
  const comma = commaError<Address>(text, rules.listen ? 'listen' : 'address');
  if (comma) return comma;
  if (text.startsWith('unix:')) {
    return bad(
      `unix domain sockets ("${text}") are not supported by keepwire`,
      0,
      'keepwire manages TCP keepalive, which only exists on TCP sockets; use host:port',
      'unsupported',
    );
  }
  if (text === '') return bad('empty address', 0, 'write host:port, e.g. 127.0.0.1:8080');
  let host: string;
  let portText: string | undefined;
  let portOffset: number;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return bad(`missing "]" in IPv6 address "${text}"`, text.length, 'e.g. [::1]:8080');
    host = text.slice(1, close);
    if (!isIPv6(host)) return bad(`invalid IPv6 address "${host}"`, 1);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) {
      return bad(`unexpected "${rest}" after the IPv6 address`, close + 1, 'e.g. [::1]:8080');
    }
    portText = rest === '' ? undefined : rest.slice(1);
    portOffset = close + 2;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon !== -1 && text.indexOf(':') !== colon) {
      return bad(
        `IPv6 address "${text}" must be written in brackets`,
        0,
        `e.g. [${text}] with a port: [::1]:8080`,
      );
    }
    if (colon === -1) {
      if (/^[0-9]+$/.test(text) && rules.listen) {
        const port = parsePort(text, 0);
        return port.ok ? ok({ host: '0.0.0.0', port: port.value, text }) : port;
      }
      host = text;
      portText = undefined;
    } else {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
    portOffset = colon + 1;
    if (host === '*' && rules.listen) host = '0.0.0.0';
    else if (/^[0-9.]+$/.test(host) && !isIPv4(host)) {
      return bad(`invalid IPv4 address "${host}"`, 0, 'four numbers 0..255 separated by dots');
    } else if (!HOSTNAME.test(host)) {
      const at = /[^A-Za-z0-9_.-]/.exec(host)?.index ?? 0;
      return bad(`invalid host "${host}" in "${text}"`, at, 'write host:port, e.g. 127.0.0.1:8080');
    }
  }
  if (portText === undefined) {
    if (rules.defaultPort !== undefined) return ok({ host, port: rules.defaultPort, text });
    return bad(`no port in "${text}"`, text.length, `add one, e.g. ${text}:8080`);
  }
  const port = parsePort(portText, portOffset);
  return port.ok ? ok({ host, port: port.value, text }) : port;
}

/** `so_keepalive=SPEC` and keepwire's `proxy_socket_keepalive SPEC`; offsets relative to `text`. */
export function parseKeepalive(text: string): Result<KeepaliveSpec> {
  const parsed = parseSoKeepalive(text);
  if (parsed.ok) return parsed;
  return bad(parsed.error.message, parsed.error.column - 1, parsed.error.hint);
}

/** Splits `name=value`; `value` is undefined for bare flags such as `backup`. */
export function splitParam(text: string): { name: string; value: string | undefined; valueOffset: number } {
  const eq = text.indexOf('=');
  if (eq === -1) return { name: text, value: undefined, valueOffset: text.length };
  return { name: text.slice(0, eq), value: text.slice(eq + 1), valueOffset: eq + 1 };
}

/** Edit distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest candidate, if close enough to be a typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestDistance <= limit ? best : undefined;
}
