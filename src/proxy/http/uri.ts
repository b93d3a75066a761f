/**
 * The request target (RFC 9112 §3.2): origin-form and absolute-form, and the
 * normalised path locations are matched against.
 *
 * nginx matches locations on the decoded, normalised URI
 * (ngx_http_parse_complex_uri): `%XX` sequences are decoded, `//` runs are
 * merged (`merge_slashes on`), `.` and `..` segments are resolved, a `..`
 * that climbs above the root and an encoded NUL are 400. keepwire does the
 * same, state for state, so `/%61dmin`, `//admin` and `/x/../admin` all
 * reach `location /admin` as they do in nginx. What goes upstream is the
 * target as the client sent it (nginx's rule for `proxy_pass` without a URI
 * part): the backend sees the client's bytes, the proxy only decides where
 * they go.
 */
import { RequestError } from './request.js';

/** A parsed request target. */
export interface Target {
  /** Origin-form as received (path and query), what is forwarded upstream. */
  url: string;
  /** The normalised path locations are matched against. */
  path: string;
  /** The authority of an absolute-form target (it replaces the Host header), else undefined. */
  host: string | undefined;
}

enum S {
  Usual,
  Slash,
  Dot,
  DotDot,
  Quoted,
  QuotedSecond,
}

function invalid(what: string): RequestError {
  return new RequestError(400, 'INVALID_URL', what);
}

/**
 * Parses a request target. Origin-form must start with `/`; absolute-form is
 * `http://` or `https://` (scheme case-insensitive) with a host nginx would
 * accept; anything else (asterisk-form, other schemes, a bare path) is 400.
 */
export function parseTarget(raw: string, mergeSlashes: boolean): Target {
  // A control character or DEL anywhere in the target (nginx 1.22 lets a HTAB through; RFC 9112 §3 does not).
  if (raw.charCodeAt(0) === 0x2f && raw.length <= 16) {
    // A short origin-form target, in one pass: a control character or DEL
    // anywhere refuses it (as the test below), and the path (up to `?`) is
    // the target itself unless it has what normalizePath rewrites (COMPLEX).
    // Past some 20 characters the regexes below cost less than this loop
    // (valgrind: about 20 instructions a character here).
    let query = -1;
    let complex = false;
    let prev = 0;
    for (let i = 0; i < raw.length; i++) {
      const c = raw.charCodeAt(i);
      if (c <= 0x20 || c === 0x7f) throw invalid('control character in the request target');
      if (query < 0) {
        if (c === 0x3f) query = i;
        else if (c === 0x25 || c === 0x23 || (prev === 0x2f && (c === 0x2f || c === 0x2e))) complex = true;
        prev = c;
      }
    }
    const path = complex ? normalizePath(raw, mergeSlashes) : query < 0 ? raw : raw.slice(0, query);
    return { url: raw, path, host: undefined };
  }
  if (/[\0-\x20\x7f]/.test(raw)) throw invalid('control character in the request target');
  if (raw.charCodeAt(0) === 0x2f)
    return { url: raw, path: normalizePath(raw, mergeSlashes), host: undefined };
  const colon = raw.indexOf('://');
  if (colon < 0) throw invalid('request target is neither origin-form nor absolute-form');
  const scheme = raw.slice(0, colon).toLowerCase();
  // nginx takes any scheme here; a reverse proxy serves http and https only.
  if (scheme !== 'http' && scheme !== 'https') throw invalid(`unsupported scheme "${scheme.slice(0, 16)}"`);
  const at = colon + 3;
  let end = at;
  // nginx's host grammar (sw_host, sw_host_ip_literal, sw_port): no userinfo.
  if (raw.charCodeAt(at) === 0x5b) {
    end = raw.indexOf(']', at);
    if (end < 0 || !/^\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]$/.test(raw.slice(at, end + 1)))
      throw invalid('invalid host in request target');
    end++;
  } else {
    while (end < raw.length && /[0-9A-Za-z.-]/.test(raw[end]!)) end++;
  }
  if (raw.charCodeAt(end) === 0x3a) {
    end++;
    while (end < raw.length && raw.charCodeAt(end) >= 0x30 && raw.charCodeAt(end) <= 0x39) end++;
  }
  const host = raw.slice(at, end);
  if (host === '' || host.charCodeAt(0) === 0x3a) throw invalid('invalid host in request target');
  const rest = raw.slice(end);
  let url: string;
  if (rest === '') url = '/';
  else if (rest.charCodeAt(0) === 0x2f) url = rest;
  // RFC 9112 §3.2.1: an empty path is sent as "/".
  else if (rest.charCodeAt(0) === 0x3f) url = `/${rest}`;
  else throw invalid('invalid host in request target');
  return { url, path: normalizePath(url, mergeSlashes), host };
}

/** Whether a path needs nginx's complex parse: a `%`, `//`, `/.`, or `#`. */
const COMPLEX = /%|\/\/|\/\.|#/;

/**
 * The path of `url` (which starts with `/`) as nginx matches locations:
 * ngx_http_parse_complex_uri (nginx 1.22, non-Windows), the query removed.
 */
export function normalizePath(url: string, mergeSlashes: boolean): string {
  const q = url.indexOf('?');
  const raw = q < 0 ? url : url.slice(0, q);
  if (!COMPLEX.test(raw)) return raw;
  const u: number[] = [];
  let state = S.Usual;
  let quotedState = S.Usual;
  let decoded = 0;
  let p = 0;
  const n = url.length;
  // `ch` is the character being looked at; a decoded %XX is looked at again in the state before it.
  let ch = url.charCodeAt(p++);
  const climb = (): void => {
    // Back over "/..": the segment before it goes too.
    let at = u.length - 4;
    for (;;) {
      if (at < 0) throw invalid('the path climbs above the root');
      if (u[at] === 0x2f) {
        u.length = at + 1;
        return;
      }
      at--;
    }
  };
  while (p <= n) {
    switch (state) {
      case S.Usual:
        if (ch === 0x2f) state = S.Slash;
        else if (ch === 0x25) {
          quotedState = state;
          state = S.Quoted;
          ch = url.charCodeAt(p++);
          continue;
        } else if (ch === 0x3f) return finish(u);
        else if (ch === 0x23) return finish(u);
        u.push(ch);
        ch = url.charCodeAt(p++);
        break;
      case S.Slash:
        if (ch === 0x2f) {
          if (!mergeSlashes) u.push(ch);
        } else if (ch === 0x2e) {
          state = S.Dot;
          u.push(ch);
        } else if (ch === 0x25) {
          quotedState = state;
          state = S.Quoted;
        } else if (ch === 0x3f || ch === 0x23) return finish(u);
        else {
          state = S.Usual;
          u.push(ch);
        }
        ch = url.charCodeAt(p++);
        break;
      case S.Dot:
        if (ch === 0x2f) {
          state = S.Slash;
          u.length--;
        } else if (ch === 0x2e) {
          state = S.DotDot;
          u.push(ch);
        } else if (ch === 0x25) {
          quotedState = state;
          state = S.Quoted;
        } else if (ch === 0x3f || ch === 0x23) {
          u.length--;
          return finish(u);
        } else {
          state = S.Usual;
          u.push(ch);
        }
        ch = url.charCodeAt(p++);
        break;
      case S.DotDot:
        if (ch === 0x2f || ch === 0x3f || ch === 0x23) {
          climb();
          if (ch !== 0x2f) return finish(u);
          state = S.Slash;
        } else if (ch === 0x25) {
          quotedState = state;
          state = S.Quoted;
        } else {
          state = S.Usual;
          u.push(ch);
        }
        ch = url.charCodeAt(p++);
        break;
      case S.Quoted: {
        const d = hex(ch);
        if (d < 0) throw invalid('invalid percent-encoding in the path');
        decoded = d;
        state = S.QuotedSecond;
        ch = url.charCodeAt(p++);
        break;
      }
      case S.QuotedSecond: {
        const d = hex(ch);
        if (d < 0) throw invalid('invalid percent-encoding in the path');
        ch = (decoded << 4) + d;
        if (ch === 0) throw invalid('encoded NUL in the path');
        // nginx keeps a decoded %, # and ? as data: they do not start an escape, a fragment or a query.
        if (ch === 0x25 || ch === 0x23 || ch === 0x3f) {
          state = S.Usual;
          u.push(ch);
          ch = url.charCodeAt(p++);
          break;
        }
        state = quotedState;
        break;
      }
    }
  }
  if (state === S.Quoted || state === S.QuotedSecond) throw invalid('invalid percent-encoding in the path');
  if (state === S.Dot) u.length--;
  else if (state === S.DotDot) climb();
  return finish(u);
}

function finish(u: number[]): string {
  // Decoded octets are bytes; latin1 keeps them one char each, as the raw path is read.
  return String.fromCharCode(...u);
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/**
 * nginx's ngx_http_validate_host, for the Host header and an absolute-form
 * authority: no `/`, no NUL, no empty label (`a..b`), not empty once a port
 * and one trailing dot are taken off. Other characters pass, as in nginx.
 */
export function validHost(host: string): boolean {
  return validHostIn(host, 0, host.length);
}

/** validHost of `s[from, to)`, read in place. */
export function validHostIn(s: string, from: number, to: number): boolean {
  let dotPos = to - from;
  let hostLen = to - from;
  let literal = false;
  let rest = false;
  for (let i = 0; i < to - from; i++) {
    const ch = s.charCodeAt(from + i);
    if (ch === 0x2e) {
      if (dotPos === i - 1) return false;
      dotPos = i;
    } else if (ch === 0x3a) {
      if (!literal && !rest) {
        hostLen = i;
        rest = true;
      }
    } else if (ch === 0x5b) {
      if (i === 0) literal = true;
    } else if (ch === 0x5d) {
      if (literal && !rest) {
        hostLen = i + 1;
        rest = true;
        literal = false;
      }
    } else if (ch === 0x2f || ch === 0) return false;
  }
  if (dotPos === hostLen - 1) hostLen--;
  return hostLen > 0;
}
