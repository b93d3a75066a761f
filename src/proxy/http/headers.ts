/**
 * Header rewriting between the two legs.
 *
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and are
 * never forwarded: `Connection` and every header it names, `Keep-Alive`,
 * `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade` and `Proxy-*`
 * (`Proxy-Connection` and friends). Framing is redone per leg, and `Expect`
 * is answered by keepwire itself, as nginx does.
 */

import { Buffer } from 'node:buffer';
import { latin1Write } from '../../kernel/node-internals.js';
import { bodyView } from '../reads.js';
import { flattened } from '../writes.js';
import { HEADER_LENGTH, HEADER_PLAIN, type ResponseHead } from './parser.js';
import { type HeaderLines, isToken, REQ_HOST, REQ_PLAIN, REQ_XFF } from './request.js';

/**
 * Names listed in every Connection header, lower case, other than the ones
 * that are hop-by-hop anyway (`close`, `keep-alive`, `upgrade`): undefined
 * for the usual `Connection: keep-alive`, so no set is built per message.
 */
function connectionOptions(raw: readonly string[]): Set<string> | undefined {
  let names: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length !== 10 || !sameName(raw[i]!, 'connection')) continue;
    const value = raw[i + 1]!;
    if (value === 'keep-alive' || value === 'close') continue;
    for (const token of value.split(',')) {
      const t = token.trim().toLowerCase();
      if (t === '' || t === 'close' || t === 'keep-alive' || t === 'upgrade') continue;
      names ??= new Set();
      names.add(t);
    }
  }
  return names;
}

/** `name` equals `lower` ignoring case; no new string for the two usual spellings. */
function sameName(name: string, lower: string): boolean {
  return name === lower || name.toLowerCase() === lower;
}

enum Kind {
  Plain,
  HopByHop,
  ContentLength,
}

/**
 * How a header is treated between legs, judged without lower-casing every
 * name: by its length first, then `Proxy-*` of any length (a 10-character
 * `Proxy-Info` is hop-by-hop as much as `Proxy-Connection`).
 */
function classify(name: string): Kind {
  switch (name.length) {
    case 2:
      if (sameName(name, 'te')) return Kind.HopByHop;
      break;
    case 7:
      if (sameName(name, 'trailer') || sameName(name, 'upgrade')) return Kind.HopByHop;
      break;
    case 10:
      if (sameName(name, 'connection') || sameName(name, 'keep-alive')) return Kind.HopByHop;
      break;
    case 14:
      if (sameName(name, 'content-length')) return Kind.ContentLength;
      break;
    case 17:
      if (sameName(name, 'transfer-encoding')) return Kind.HopByHop;
      break;
  }
  if (name.length > 6 && (name.charCodeAt(0) | 0x20) === 0x70 && sameName(name.slice(0, 6), 'proxy-'))
    return Kind.HopByHop;
  return Kind.Plain;
}

/** A header value may not carry CR or LF (response splitting); such values are dropped. */
function safe(value: string): boolean {
  return !/[\r\n\0]/.test(value);
}

export interface RequestContext {
  method: string;
  url: string;
  /** The client's header lines. */
  head: HeaderLines;
  remoteAddr: string;
  remotePort: number;
  serverPort: number;
  scheme: 'http' | 'https';
  /** The client's Host (without a default), or '' if none. */
  host: string;
  /** The upstream group name or address, nginx's $proxy_host. */
  proxyHost: string;
}

/** Expands nginx variables in a proxy_set_header value. Unknown variables expand to ''. */
export function expand(template: string, ctx: RequestContext, xff: string): string {
  if (!template.includes('$')) return template;
  return template.replace(
    /\$\{(\w+)\}|\$(\w+)/g,
    (_m, braced: string | undefined, bare: string | undefined) => variable(braced ?? bare ?? '', ctx, xff),
  );
}

function headerValue(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === lowerName) return raw[i + 1];
  return undefined;
}

function variable(name: string, ctx: RequestContext, xff: string): string {
  switch (name) {
    case 'host':
      return (ctx.host.replace(/:\d+$/, '') || ctx.proxyHost).toLowerCase();
    case 'http_host':
      return ctx.host;
    case 'proxy_host':
      return ctx.proxyHost;
    case 'remote_addr':
      return ctx.remoteAddr;
    case 'remote_port':
      return String(ctx.remotePort);
    case 'server_port':
      return String(ctx.serverPort);
    case 'scheme':
      return ctx.scheme;
    case 'request_method':
      return ctx.method;
    case 'request_uri':
      return ctx.url;
    case 'uri':
      return ctx.url.split('?')[0] ?? '';
    case 'args':
      return ctx.url.includes('?') ? ctx.url.slice(ctx.url.indexOf('?') + 1) : '';
    case 'proxy_add_x_forwarded_for':
      return xff;
    default:
      if (name.startsWith('http_'))
        return headerValue(ctx.head.rawHeaders, name.slice(5).replace(/_/g, '-').toLowerCase()) ?? '';
      return '';
  }
}

/** The variables a `hash` key may name for an HTTP or gRPC request (asked for by `Tries` only in a group that hashes). */
export function balancerVars(ctx: RequestContext): Record<string, string> {
  return { remote_addr: ctx.remoteAddr, request_uri: ctx.url, host: ctx.host };
}

export interface UpstreamHeadOptions {
  /** '1.0' sends HTTP/1.0 and Connection: close; '1.1' with `reuse` sends no Connection header. */
  version: '1.0' | '1.1';
  reuse: boolean;
  setHeaders: readonly { name: string; value: string }[];
  /** Body framing towards the upstream: a known length, chunked, or none. */
  bodyLength: number | 'chunked' | 'none';
  /** For an Upgrade request: the Upgrade value to pass on. */
  upgrade?: string;
}

/**
 * The request head sent upstream, as one latin1 string. The client's Host is
 * kept (as HAProxy, Envoy and Caddy do; nginx users write
 * `proxy_set_header Host $host`), `X-Forwarded-For` gets the client address
 * appended, `X-Forwarded-Proto` and `X-Forwarded-Host` are set, and
 * `proxy_set_header` is applied last (an empty value removes the header).
 */
export function upstreamRequestHead(ctx: RequestContext, opts: UpstreamHeadOptions): string {
  const head = ctx.head;
  if (head.connectionNames) return upstreamRequestHeadByName(ctx, opts);
  const overridden = overriddenNames(opts.setHeaders);
  const { text, marks } = head;
  let priorXff: string | undefined;
  let hasHost = false;
  for (let i = 0; i < marks.length; i += 4) {
    const kind = marks[i + 3];
    if (kind === REQ_HOST) hasHost = true;
    else if (kind === REQ_XFF) {
      const v = text.slice(marks[i + 1]! + 1, marks[i + 2]!).trim();
      priorXff = priorXff === undefined ? v : `${priorXff}, ${v}`;
    }
  }
  const added =
    overridden === undefined
      ? ADDED.lines(ctx, opts, priorXff, hasHost)
      : addedLines(ctx, opts, overridden, priorXff, hasHost);
  // The client's request line is sent as received when it is the one to send
  // (an origin-form target, the same version): then it and the header lines
  // kept after it are one slice of the head, not a line built and joined.
  const lineEnd = marks.length > 0 ? marks[0]! - 2 : text.length;
  const asReceived =
    lineEnd === ctx.method.length + ctx.url.length + 10 &&
    text.charCodeAt(lineEnd - 1) === opts.version.charCodeAt(2) &&
    text.startsWith(ctx.url, ctx.method.length + 1);
  const lines = keptLines(
    text,
    marks,
    (1 << REQ_PLAIN) | (1 << REQ_HOST),
    overridden && ((from, colon) => overridden.has(text.slice(from, colon).toLowerCase())),
    asReceived ? lineEnd : -1,
  );
  return asReceived ? lines + added : `${ctx.method} ${ctx.url} HTTP/${opts.version}\r\n${lines}${added}`;
}

/**
 * The header lines of `marks` whose kind is in `kinds` (a bit per kind) and
 * that `drop` (given a line's start and colon) does not refuse, ending in
 * CRLF each: runs of consecutive lines are one slice each of the head as
 * received, so a typical head costs one string, not one per header.
 * `leadEnd` (not -1): `text` up to there (the request line) is kept too,
 * as the start of the first run.
 */
function keptLines(
  text: string,
  marks: readonly number[],
  kinds: number,
  drop?: (from: number, colon: number) => boolean,
  leadEnd = -1,
): string {
  let out = '';
  let runStart = leadEnd < 0 ? -1 : 0;
  let runEnd = leadEnd;
  for (let i = 0; i < marks.length; i += 4) {
    const from = marks[i]!;
    if ((kinds & (1 << marks[i + 3]!)) !== 0 && (drop === undefined || !drop(from, marks[i + 1]!))) {
      if (runStart < 0) runStart = from;
      runEnd = marks[i + 2]!;
    } else if (runStart >= 0) {
      out += `${text.slice(runStart, runEnd)}\r\n`;
      runStart = -1;
    }
  }
  if (runStart >= 0) out += `${text.slice(runStart, runEnd)}\r\n`;
  return out;
}

const OVERRIDDEN = new WeakMap<readonly { name: string }[], Set<string>>();

/** The lower-case names proxy_set_header sets, once per location. */
function overriddenNames(setHeaders: readonly { name: string }[]): Set<string> | undefined {
  if (setHeaders.length === 0) return undefined;
  let names = OVERRIDDEN.get(setHeaders);
  if (names === undefined) {
    names = new Set(setHeaders.map((h) => h.name.toLowerCase()));
    OVERRIDDEN.set(setHeaders, names);
  }
  return names;
}

/** The same head built header by header: for a Connection header that names other headers. */
function upstreamRequestHeadByName(ctx: RequestContext, opts: UpstreamHeadOptions): string {
  const raw = ctx.head.rawHeaders;
  const named = connectionOptions(raw);
  const overridden = overriddenNames(opts.setHeaders);
  let priorXff: string | undefined;
  let out = `${ctx.method} ${ctx.url} HTTP/${opts.version}\r\n`;
  let hasHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (classify(name) !== Kind.Plain) continue;
    const lower = name.toLowerCase();
    if (named?.has(lower)) continue;
    switch (lower) {
      case 'x-forwarded-for':
        priorXff = priorXff === undefined ? raw[i + 1]! : `${priorXff}, ${raw[i + 1]!}`;
        continue;
      case 'x-forwarded-proto':
      case 'x-forwarded-host':
      case 'expect':
        continue;
      case 'host':
        hasHost = true;
        break;
    }
    if (overridden?.has(lower)) continue;
    out += `${name}: ${raw[i + 1]!}\r\n`;
  }
  return out + addedLines(ctx, opts, overridden, priorXff, hasHost);
}

/**
 * One header line `Name: value` CRLF, the last one made kept: consecutive
 * requests mostly carry the same client address (one load balancer, one
 * keep-alive connection) and Host, so the line is not built again each time.
 */
class LastLine {
  private value: string | undefined;
  private text = '';

  constructor(private readonly name: string) {}

  line(value: string): string {
    if (value !== this.value) {
      this.value = value;
      this.text = `${this.name}: ${value}\r\n`;
    }
    return this.text;
  }
}

const XFF = new LastLine('X-Forwarded-For');
const XFH = new LastLine('X-Forwarded-Host');

/**
 * The added lines and the empty line (`addedLines`) for a location without
 * proxy_set_header, the last ones made kept: consecutive requests mostly
 * come from one address with one Host and no body, so the block is not
 * built again each time (and the head is two strings joined, not eight).
 */
class LastAdded {
  private xff: string | undefined;
  private scheme = '';
  private host = '';
  private proxyHost = '';
  private hasHost = false;
  private version = '';
  private reuse = false;
  private bodyLength: UpstreamHeadOptions['bodyLength'] = 'none';
  private upgrade: string | undefined;
  private text = '';

  lines(
    ctx: RequestContext,
    opts: UpstreamHeadOptions,
    priorXff: string | undefined,
    hasHost: boolean,
  ): string {
    const xff = priorXff === undefined ? ctx.remoteAddr : `${priorXff}, ${ctx.remoteAddr}`;
    if (
      xff !== this.xff ||
      ctx.scheme !== this.scheme ||
      ctx.host !== this.host ||
      hasHost !== this.hasHost ||
      (!hasHost && ctx.proxyHost !== this.proxyHost) ||
      opts.version !== this.version ||
      opts.reuse !== this.reuse ||
      opts.bodyLength !== this.bodyLength ||
      opts.upgrade !== this.upgrade
    ) {
      this.xff = xff;
      this.scheme = ctx.scheme;
      this.host = ctx.host;
      this.hasHost = hasHost;
      this.proxyHost = ctx.proxyHost;
      this.version = opts.version;
      this.reuse = opts.reuse;
      this.bodyLength = opts.bodyLength;
      this.upgrade = opts.upgrade;
      // Written with every head until it changes: flat, or each write would walk its pieces again.
      this.text = flattened(addedLines(ctx, opts, undefined, priorXff, hasHost));
    }
    return this.text;
  }
}

const ADDED = new LastAdded();

/** X-Forwarded-*, Host when the client sent none, proxy_set_header, framing and Connection. */
function addedLines(
  ctx: RequestContext,
  opts: UpstreamHeadOptions,
  overridden: Set<string> | undefined,
  priorXff: string | undefined,
  hasHost: boolean,
): string {
  const xff = priorXff === undefined ? ctx.remoteAddr : `${priorXff}, ${ctx.remoteAddr}`;
  let out = '';
  if (!overridden?.has('x-forwarded-for')) out += XFF.line(xff);
  if (!overridden?.has('x-forwarded-proto'))
    out += ctx.scheme === 'https' ? 'X-Forwarded-Proto: https\r\n' : 'X-Forwarded-Proto: http\r\n';
  if (ctx.host !== '' && !overridden?.has('x-forwarded-host')) out += XFH.line(ctx.host);
  // Without a Host line to keep: the absolute-form target's authority (RFC 9112 §3.2.2), else the upstream's name.
  if (!hasHost && !overridden?.has('host')) out += `Host: ${ctx.host || ctx.proxyHost}\r\n`;
  for (const h of opts.setHeaders) {
    // The body's framing is keepwire's (redone per leg): a second
    // Content-Length or Transfer-Encoding would let the upstream frame the
    // request differently.
    if (isFraming(h.name)) continue;
    const value = expand(h.value, ctx, xff);
    if (value !== '' && safe(value)) out += `${h.name}: ${value}\r\n`;
  }
  if (opts.bodyLength === 'chunked') out += 'Transfer-Encoding: chunked\r\n';
  else if (typeof opts.bodyLength === 'number') out += `Content-Length: ${opts.bodyLength}\r\n`;
  // As nginx, proxy_set_header replaces what keepwire would send itself
  // (its Connection and Upgrade too), and an empty value sends nothing: the
  // usual WebSocket snippet (`Upgrade $http_upgrade`, `Connection
  // "upgrade"`) gives exactly one of each.
  if (!overridden?.has('connection')) {
    if (opts.upgrade !== undefined) out += 'Connection: upgrade\r\n';
    else if (!opts.reuse || opts.version === '1.0') out += 'Connection: close\r\n';
  }
  if (opts.upgrade !== undefined && !overridden?.has('upgrade')) out += `Upgrade: ${opts.upgrade}\r\n`;
  return `${out}\r\n`;
}

function isFraming(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === 'content-length' || lower === 'transfer-encoding';
}

/**
 * The response headers passed to the client: hop-by-hop ones dropped
 * (framing is redone by the client leg), the rest as received.
 */
export function clientResponseHeaders(raw: readonly string[], dropLength = false): string[] {
  const named = connectionOptions(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const kind = classify(name);
    if (kind === Kind.HopByHop || (dropLength && kind === Kind.ContentLength)) continue;
    if (named?.has(name.toLowerCase())) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** Name, value pairs as header lines (`Name: value` CRLF each). */
export function headerLines(pairs: readonly string[]): string {
  let out = '';
  for (let i = 0; i < pairs.length; i += 2) out += `${pairs[i]}: ${pairs[i + 1]}\r\n`;
  return out;
}

/**
 * The response head for the client up to its framing and connection lines
 * (connection.ts `startResponse` adds those): the status line
 * `HTTP/1.1 status message`, then the header lines `clientResponseHeaders`
 * keeps, cut from the head's bytes as received. When the upstream's status
 * line is the one to send (HTTP/1.1, the same reason phrase) and one run of
 * consecutive lines follows it (a typical response), the head is a view of
 * the read it came in, valid as long as that read is (the client connection
 * copies it into its write); else one Buffer is made. No string is made of
 * the head; whitespace inside a line is passed on as the upstream sent it.
 */
export function clientResponseHead(head: ResponseHead, dropLength: boolean, message: string): Buffer {
  const line = head.minorVersion === 1 && head.statusMessage === message ? -1 : head.statusCode;
  if (head.connectionNames)
    return Buffer.from(
      `HTTP/1.1 ${head.statusCode} ${message}\r\n${headerLines(clientResponseHeaders(head.rawHeaders, dropLength))}`,
      'latin1',
    );
  const { bytes, marks } = head;
  const kinds = dropLength ? 1 << HEADER_PLAIN : (1 << HEADER_PLAIN) | (1 << HEADER_LENGTH);
  // The runs of kept lines, each from its first line's start to past the
  // CRLF of its last; the status line as received starts the first run.
  let n = 0;
  let size = 0;
  let runStart = line < 0 ? head.lineStart : -1;
  let runEnd = head.lineEnd + 2;
  for (let i = 0; i <= marks.length; i += 4) {
    if (i < marks.length && (kinds & (1 << marks[i + 3]!)) !== 0) {
      if (runStart < 0) runStart = marks[i]!;
      runEnd = marks[i + 2]! + 2;
    } else if (runStart >= 0) {
      RUNS[n++] = runStart;
      RUNS[n++] = runEnd;
      size += runEnd - runStart;
      runStart = -1;
    }
  }
  if (n === 2 && line < 0) return bodyView(bytes, RUNS[0]!, RUNS[1]!);
  const lead = line < 0 ? '' : `HTTP/1.1 ${line} ${message}\r\n`;
  const out = Buffer.allocUnsafe(lead.length + size);
  let p = latin1Write(out, lead, 0);
  for (let k = 0; k < n; k += 2) p += bytes.copy(out, p, RUNS[k]!, RUNS[k + 1]!);
  return out;
}

/** clientResponseHead's runs, start and end pairs: only its first entries hold (kept, never emptied). */
const RUNS: number[] = [];

/** Trailers minus the fields that may not appear in them (RFC 9110 §6.5.1), flat name, value pairs. */
export function trailerFields(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (classify(lower) !== Kind.Plain || lower === 'host') continue;
    if (raw[i]!.length === 0 || !isToken(raw[i]!, 0, raw[i]!.length) || !safe(raw[i + 1]!)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** RFC 9110 §9.2.2: GET, HEAD, OPTIONS, PUT, DELETE, TRACE (compared, not hashed: the method is a new string per request). */
export function idempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'PUT':
    case 'DELETE':
    case 'TRACE':
      return true;
  }
  return false;
}
