/**
 * nginx's `so_keepalive` parameter: `on | off | [idle]:[interval]:[count]`.
 *
 * An empty field leaves that setting at the system default, as nginx does
 * (it skips the setsockopt call). Limits are the kernel's: values outside
 * them make setsockopt fail with EINVAL, which nginx only logs at run time,
 * so keepwire refuses them when the text is read.
 */
import { parseDuration } from '../units/time.js';

export const KERNEL_LIMITS = {
  /** MAX_TCP_KEEPIDLE in include/net/tcp.h */
  idle: { min: 1, max: 32767, option: 'TCP_KEEPIDLE' },
  /** MAX_TCP_KEEPINTVL */
  interval: { min: 1, max: 32767, option: 'TCP_KEEPINTVL' },
  /** MAX_TCP_KEEPCNT */
  count: { min: 1, max: 127, option: 'TCP_KEEPCNT' },
} as const;

/** Keepalive settings in kernel units (seconds, probes). Absent fields mean "system default". */
export interface KeepaliveSpec {
  enable: boolean;
  idle?: number;
  interval?: number;
  count?: number;
}

export interface SpecError {
  message: string;
  /** 1-based column within the text given to the parser. */
  column: number;
  hint?: string;
}

type Failure = { ok: false; error: SpecError };
export type SpecResult = { ok: true; value: KeepaliveSpec } | Failure;

const PREFIX = 'so_keepalive=';
const GRAMMAR_HINT = 'so_keepalive takes on, off or [idle]:[interval]:[count], e.g. so_keepalive=60s:10s:6';

function err(message: string, offset: number, hint?: string): Failure {
  return {
    ok: false,
    error: hint === undefined ? { message, column: offset + 1 } : { message, column: offset + 1, hint },
  };
}

/**
 * Parses an nginx `so_keepalive` value. The text may include the
 * `so_keepalive=` prefix; columns in errors are relative to the text given.
 */
export function parseSoKeepalive(text: string): SpecResult {
  const base = text.startsWith(PREFIX) ? PREFIX.length : 0;
  const body = text.slice(base);
  if (body === 'on') return { ok: true, value: { enable: true } };
  if (body === 'off') return { ok: true, value: { enable: false } };
  if (body === '') return err('empty so_keepalive value', base, GRAMMAR_HINT);

  const fields = body.split(':');
  if (fields.length > 3) {
    const third = body.split(':', 3).join(':').length;
    return err(`so_keepalive has ${fields.length} fields, at most 3 are allowed`, base + third, GRAMMAR_HINT);
  }
  const [idleText = '', intervalText = '', countText = ''] = fields;
  const spec: KeepaliveSpec = { enable: true };

  let offset = base;
  for (const [name, fieldText] of [
    ['idle', idleText],
    ['interval', intervalText],
  ] as const) {
    if (fieldText !== '') {
      const seconds = parseSeconds(name, fieldText, offset);
      if (!seconds.ok) return seconds;
      spec[name] = seconds.value;
    }
    offset += fieldText.length + 1;
  }
  if (countText !== '') {
    if (!/^[0-9]+$/.test(countText)) {
      const bad = /[^0-9]/.exec(countText)!.index;
      return err(
        `keepalive count "${countText}" must be a whole number of probes`,
        offset + bad,
        'the third field counts probes and takes no unit, e.g. 60s:10s:6',
      );
    }
    const count = Number(countText);
    const limit = checkLimit('count', count, offset);
    if (limit) return limit;
    spec.count = count;
  }
  if (spec.idle === undefined && spec.interval === undefined && spec.count === undefined) {
    // nginx rejects "::" as well: it would change nothing.
    return err(
      'so_keepalive sets nothing: every field is empty',
      base,
      `use "on" for system defaults; ${GRAMMAR_HINT}`,
    );
  }
  return { ok: true, value: spec };
}

function parseSeconds(
  name: 'idle' | 'interval',
  text: string,
  offset: number,
): { ok: true; value: number } | Failure {
  const parsed = parseDuration(text);
  if (!parsed.ok) {
    const e = parsed.error;
    return err(`keepalive ${name}: ${e.message}`, offset + e.offset, e.hint);
  }
  const ms = parsed.value;
  if (ms % 1000 !== 0) {
    return err(
      `keepalive ${name} "${text}" is not a whole number of seconds`,
      offset,
      `the kernel counts ${KERNEL_LIMITS[name].option} in seconds`,
    );
  }
  const seconds = ms / 1000;
  return checkLimit(name, seconds, offset) ?? { ok: true, value: seconds };
}

function checkLimit(name: keyof typeof KERNEL_LIMITS, value: number, offset: number): Failure | undefined {
  const { min, max, option } = KERNEL_LIMITS[name];
  const unit = name === 'count' ? '' : 's';
  if (value < min) {
    return err(
      `keepalive ${name} must be at least ${min}${unit}, got ${value}${unit}`,
      offset,
      `${option} accepts ${min}..${max}`,
    );
  }
  if (value > max) {
    return err(
      `keepalive ${name} ${value}${unit} exceeds the kernel limit of ${max}${unit}`,
      offset,
      `${option} accepts ${min}..${max}`,
    );
  }
  return undefined;
}

/** Formats a spec back into nginx syntax (`on`, `off`, `60s:10s:6`, `60s::`). */
export function formatSoKeepalive(spec: KeepaliveSpec): string {
  if (!spec.enable) return 'off';
  if (spec.idle === undefined && spec.interval === undefined && spec.count === undefined) return 'on';
  const idle = spec.idle === undefined ? '' : `${spec.idle}s`;
  const interval = spec.interval === undefined ? '' : `${spec.interval}s`;
  const count = spec.count === undefined ? '' : String(spec.count);
  return `${idle}:${interval}:${count}`;
}

/** Validates a programmatic spec against the kernel limits; throws a RangeError naming the field. */
export function assertWithinKernelLimits(spec: Partial<Record<keyof typeof KERNEL_LIMITS, number>>): void {
  for (const name of Object.keys(KERNEL_LIMITS) as (keyof typeof KERNEL_LIMITS)[]) {
    const value = spec[name];
    if (value === undefined) continue;
    const { min, max, option } = KERNEL_LIMITS[name];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(
        `keepalive ${name} must be an integer in ${min}..${max} (${option}), got ${value}`,
      );
    }
  }
}
