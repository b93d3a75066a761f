/**
 * An HTTP/2 request's header list as the request an HTTP/1.1 client would
 * have sent (RFC 9113 §8.3.1): `:method :path HTTP/1.1`, `Host` from
 * `:authority` (else the `host` field), the `cookie` fields joined with
 * "; " (§8.2.3), the rest as header lines. The result goes through the
 * HTTP/1.x head parser (`request.ts`) with the address's head rules, so an
 * HTTP/2 request meets exactly the checks, limits and header classes an
 * HTTP/1.x one does (large_client_header_buffers, max_headers,
 * underscores_in_headers, ignore_invalid_headers, Host validation), and the
 * exchange forwards it with the same header rules.
 *
 * nghttp2 has already refused what HTTP/2 forbids (connection-specific
 * fields, upper-case names, CR/LF/NUL in values, missing pseudo-headers,
 * a DATA length that contradicts content-length) with a stream error.
 */
import { type ClientRequest, type HeadRules, parseRequestHead } from '../http/request.js';

/** What the access line says about a request whose head could not be read. */
export interface Http2RequestFields {
  method: string;
  path: string;
  host: string;
}

/** The request-line parts of a header list (flat name, value pairs), for log lines. */
export function requestFieldsOf(raw: readonly string[]): Http2RequestFields {
  let method = '';
  let path = '';
  let authority: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name === ':method') method = raw[i + 1]!;
    else if (name === ':path') path = raw[i + 1]!;
    else if (name === ':authority') authority = raw[i + 1]!;
    else if (name === 'host') host ??= raw[i + 1]!;
  }
  return { method, path, host: authority ?? host ?? '' };
}

/**
 * Parses the header list of a stream as an HTTP/1.1 request head.
 * `endStream`: the HEADERS frame ended the stream (no body). A body without
 * content-length (allowed in HTTP/2) is marked chunked: it is streamed to
 * the upstream with chunked framing. Throws the parser's RequestError.
 */
export function http2Request(raw: readonly string[], endStream: boolean, rules: HeadRules): ClientRequest {
  const f = requestFieldsOf(raw);
  // CONNECT has no :path (RFC 9113 §8.5); the frontend refuses it (405) as for HTTP/1.1.
  const target = f.method === 'CONNECT' ? f.host : f.path;
  let text = `${f.method} ${target} HTTP/1.1\r\n`;
  if (f.host !== '') text += `Host: ${f.host}\r\n`;
  let cookie: string | undefined;
  let length = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 0x3a || name === 'host') continue;
    const value = raw[i + 1]!;
    if (name === 'cookie') {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      continue;
    }
    if (name === 'content-length') length = true;
    text += `${name}: ${value}\r\n`;
  }
  if (cookie !== undefined) text += `cookie: ${cookie}\r\n`;
  if (!endStream && !length) text += 'transfer-encoding: chunked\r\n';
  const buf = Buffer.from(`${text}\r\n`, 'latin1');
  return parseRequestHead(buf, 0, buf.length, rules);
}
