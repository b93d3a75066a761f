/**
 * nginx time values: `ms s m h d w M y`, a bare number means seconds, and
 * several terms may follow each other as in nginx (`1h30m`). The unit sizes
 * are nginx's own (ngx_parse_time): a month is 30 days, a year 365.
 */

export const TIME_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  M: 2_592_000_000,
  y: 31_536_000_000,
};

/**
 * The longest delay a Node timer runs: setTimeout takes a signed 32-bit
 * millisecond count, and a longer one is replaced by 1 ms with a warning
 * (`worker_shutdown_timeout 30d` would reset requests in flight after 1 ms).
 * 24 days, 20 h, 31 min, 23.647 s.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A parse failure: `offset` is 0-based within the text that was parsed. */
export interface ValueError {
  message: string;
  offset: number;
  hint?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: ValueError };

export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const fail = <T>(message: string, offset: number, hint?: string): Parsed<T> => ({
  ok: false,
  error: hint === undefined ? { message, offset } : { message, offset, hint },
});

// Units are tried longest first so that `ms` is not read as `m` followed by `s`.
const UNIT_ORDER = ['ms', 's', 'm', 'h', 'd', 'w', 'M', 'y'];
const UNIT_RANK: Record<string, number> = { y: 0, M: 1, w: 2, d: 3, h: 4, m: 5, s: 6, ms: 7 };

/** Parses an nginx time value into milliseconds. */
export function parseDuration(text: string): Parsed<number> {
  if (text.length === 0) return fail('empty time value', 0, 'write a number with a unit, e.g. 60s');
  let pos = 0;
  let total = 0;
  let lastRank = -1;
  while (pos < text.length) {
    const start = pos;
    while (pos < text.length && text.charCodeAt(pos) >= 48 && text.charCodeAt(pos) <= 57) pos++;
    if (pos === start) {
      return pos === 0
        ? fail(`invalid time value "${text}": it must start with a number`, 0, 'e.g. 60s, 1m30s, 500ms')
        : fail(`unexpected "${text[pos]}" in time value "${text}"`, pos, 'e.g. 60s, 1m30s, 500ms');
    }
    const amount = Number(text.slice(start, pos));
    let unit = '';
    if (pos < text.length) {
      unit = UNIT_ORDER.find((u) => text.startsWith(u, pos)) ?? '';
      if (unit === '') {
        const bad = /^[^0-9]+/.exec(text.slice(pos))?.[0] ?? text.slice(pos);
        return fail(
          `unknown time unit "${bad}" in "${text}"`,
          pos,
          'nginx time units are ms, s, m, h, d, w, M (30 days) and y (365 days); a bare number is seconds',
        );
      }
    }
    // As in ngx_parse_time, a trailing bare number counts as seconds (`1m30`).
    const rank = UNIT_RANK[unit || 's']!;
    if (rank <= lastRank) {
      return fail(`time units in "${text}" must go from largest to smallest, each once`, pos);
    }
    lastRank = rank;
    total += amount * (TIME_UNITS_MS[unit || 's'] ?? 1000);
    pos += unit.length;
    if (!Number.isSafeInteger(total)) return fail(`time value "${text}" is too large`, start);
  }
  return ok(total);
}

/** Formats milliseconds the way a person would write them in nginx config. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = TIME_UNITS_MS[unit]!;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
