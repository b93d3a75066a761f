/**
 * The log records of the HTTP proxy: one `request` line per client request
 * (nginx's access log, with the upstream connection's story added) and one
 * `upstream_retry` line per retry, so a stale-pool retry is never silent.
 */

export type RequestEndReason =
  /** The response was delivered whole. */
  | 'ok'
  /** Answered by `return`, or by keepwire itself (404 without a location). */
  | 'local'
  | 'client_closed'
  | 'client_header_timeout'
  | 'client_body_timeout'
  | 'send_timeout'
  | 'body_too_large'
  | 'bad_request'
  | 'connect_failed'
  | 'connect_timeout'
  | 'upstream_timeout'
  | 'upstream_reset'
  | 'upstream_invalid'
  | 'no_live_upstreams'
  | 'shutdown';

/**
 * The end reason an upstream failure logs, for the HTTP exchange and gRPC
 * calls alike: what went wrong on the way (connect, its timer, the read
 * timer, an invalid answer), anything else a reset.
 */
export function upstreamFailureReason(
  kind: 'connect' | 'connect_timeout' | 'timeout' | 'invalid' | string,
): RequestEndReason {
  switch (kind) {
    case 'connect':
      return 'connect_failed';
    case 'connect_timeout':
      return 'connect_timeout';
    case 'timeout':
      return 'upstream_timeout';
    case 'invalid':
      return 'upstream_invalid';
    default:
      return 'upstream_reset';
  }
}

export interface RequestRecord {
  msg: 'request';
  listen: string;
  client: string;
  method: string;
  path: string;
  host: string;
  /** Status sent to the client; 0 when the connection closed before any. */
  status: number;
  /** Response body bytes written to the client. */
  bytesSent: number;
  /** Request body bytes read from the client. */
  bytesReceived: number;
  /** The upstream server of the last attempt; null without one. */
  upstream: string | null;
  /** Whether the last attempt used a cached keep-alive connection. */
  upstreamConnect: 'reused' | 'new' | null;
  /** Attempts made, including retries. */
  tries: number;
  /** Attempts beyond the first (stale-connection retries and next-upstream moves). */
  retries: number;
  /** Upstream response status of the last attempt, when one arrived. */
  upstreamStatus?: number;
  timings: {
    totalMs: number;
    /** Time to connect the last attempt's new connection. */
    connectMs?: number;
    /** From writing the request to the response header (last attempt). */
    headerMs?: number;
  };
  reason: RequestEndReason;
  detail?: string;
  /** Unsolicited Pongs keepwire sent into the tunnel (`websocket_heartbeat`); only on tunnels of locations that set it. */
  websocketHeartbeats?: number;
  /** `HTTP/2.0` for a request that came on an HTTP/2 stream; absent for HTTP/1.x. */
  protocol?: string;
  /** grpc_pass calls: the grpc-status the client was given (the server's, or keepwire's own for a failure); absent when none was (a reset stream). */
  grpcStatus?: number;
}

export interface RetryRecord {
  msg: 'upstream_retry';
  method: string;
  path: string;
  upstream: string;
  /** `stale_connection`: a reused keep-alive connection failed before any response byte. */
  kind: 'stale_connection' | 'next_upstream';
  /** The failure that caused it. */
  detail: string;
  attempt: number;
}

/** Why a request was not retried although its attempt failed (logged in `detail`). */
export const NOT_RETRIED_MAY_HAVE_REACHED =
  'not retried: a non-idempotent request may have reached the upstream';

/**
 * Connections closed at accept because `worker_connections` were all in
 * use (nginx logs "worker_connections are not enough"): one line for the
 * first, then at most one per period with the count refused in it.
 */
export interface RefusedRecord {
  msg: 'worker_connections are not enough';
  listen: string;
  workerConnections: number;
  refused: number;
  periodMs: number;
}

/**
 * A tunnel of a location with `websocket_heartbeat` whose bytes are not a
 * valid WebSocket stream: relayed as plain bytes, no heartbeats. Logged once
 * per tunnel, when the first invalid frame header passes.
 */
export interface WebSocketRelayRecord {
  msg: 'websocket_relay';
  client: string;
  path: string;
  upstream: string | null;
  /** The direction the invalid frame came from. */
  from: 'client' | 'upstream';
  detail: string;
}

/**
 * An HTTP/2 client connection closed by keepwire for a reason the client
 * should not have caused: an unanswered PING (`http2_ping_timeout`), or a
 * flood of streams reset before their responses (rapid reset, CVE-2023-44487).
 */
export interface Http2ConnectionRecord {
  msg: 'http2_ping_timeout' | 'http2_reset_flood';
  listen: string;
  client: string;
  /** Streams the client opened on the connection. */
  streams: number;
  /** Of them, reset by the client before their responses ended. */
  resets: number;
  detail: string;
}

/** A client connection to an `ssl` address that ended before its TLS handshake did. */
export interface TlsHandshakeRecord {
  msg: 'tls_handshake_failed';
  listen: string;
  client: string;
  /** handshake_timeout, client_closed or tls_error (OpenSSL's reason in `detail`). */
  reason: string;
  detail: string;
}

/**
 * An upstream HTTP/2 connection of `grpc_pass` that keepwire closed or slowed
 * for a reason the server gave or caused: an unanswered PING
 * (`grpc_ping_timeout`), GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (the PING
 * interval for that server doubled, as grpc-go does), or a RST_STREAM /
 * GOAWAY that cut calls in flight.
 */
export interface GrpcUpstreamRecord {
  msg: 'grpc_ping_timeout' | 'grpc_too_many_pings';
  upstream: string;
  detail: string;
  /** grpc_too_many_pings: the interval used from now on for that server. */
  pingIntervalMs?: number;
}

export type HttpLogRecord =
  | GrpcUpstreamRecord
  | RequestRecord
  | RetryRecord
  | RefusedRecord
  | WebSocketRelayRecord
  | Http2ConnectionRecord
  | TlsHandshakeRecord;

// Only these need escaping in a JSON string (what JSON.stringify escapes for
// strings without lone surrogates, which latin1-decoded request text cannot have).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its purpose
const JSON_SPECIAL = /["\\\u0000-\u001f\ud800-\udfff]/;

function str(s: string): string {
  return JSON_SPECIAL.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/**
 * `JSON.stringify(record)` for the one line per request, written out by
 * hand: the generic serialiser's walk over property names and types was a
 * tenth of the proxy's JavaScript time per request. Same keys, same order,
 * same text for any record (test/proxy/http/log-line.test.ts).
 */
export function requestJson(r: RequestRecord): string {
  return `{${requestFields(r)}`;
}

/**
 * `requestJson` without its opening brace, for a line that puts fields of
 * its own first (cutting the brace off a finished string would copy it).
 */
export function requestFields(r: RequestRecord): string {
  const t = r.timings;
  const upstream = r.upstream;
  // The usual line: nothing to escape, so every string goes in between
  // quotes of the template itself (fewer intermediate strings per line).
  if (
    t.connectMs === undefined &&
    r.upstreamStatus !== undefined &&
    r.detail === undefined &&
    r.websocketHeartbeats === undefined &&
    r.protocol === undefined &&
    r.grpcStatus === undefined &&
    upstream !== null &&
    r.upstreamConnect !== null &&
    !JSON_SPECIAL.test(r.path) &&
    !JSON_SPECIAL.test(r.host) &&
    !JSON_SPECIAL.test(r.client) &&
    !JSON_SPECIAL.test(r.listen) &&
    !JSON_SPECIAL.test(r.method) &&
    !JSON_SPECIAL.test(upstream)
  )
    return `"msg":"request","listen":"${r.listen}","client":"${r.client}","method":"${r.method}","path":"${r.path}","host":"${r.host}","status":${r.status},"bytesSent":${r.bytesSent},"bytesReceived":${r.bytesReceived},"upstream":"${upstream}","upstreamConnect":"${r.upstreamConnect}","tries":${r.tries},"retries":${r.retries},"timings":{"totalMs":${t.totalMs}${t.headerMs === undefined ? '' : `,"headerMs":${t.headerMs}`}},"reason":"${r.reason}","upstreamStatus":${r.upstreamStatus}}`;
  let timings = `{"totalMs":${t.totalMs}`;
  if (t.connectMs !== undefined) timings += `,"connectMs":${t.connectMs}`;
  if (t.headerMs !== undefined) timings += `,"headerMs":${t.headerMs}`;
  let out =
    `"msg":"request","listen":${str(r.listen)},"client":${str(r.client)},"method":${str(r.method)}` +
    `,"path":${str(r.path)},"host":${str(r.host)},"status":${r.status},"bytesSent":${r.bytesSent}` +
    `,"bytesReceived":${r.bytesReceived},"upstream":${upstream === null ? 'null' : str(upstream)}` +
    `,"upstreamConnect":${r.upstreamConnect === null ? 'null' : `"${r.upstreamConnect}"`}` +
    `,"tries":${r.tries},"retries":${r.retries},"timings":${timings}},"reason":"${r.reason}"`;
  if (r.upstreamStatus !== undefined) out += `,"upstreamStatus":${r.upstreamStatus}`;
  if (r.detail !== undefined) out += `,"detail":${JSON.stringify(r.detail)}`;
  if (r.websocketHeartbeats !== undefined) out += `,"websocketHeartbeats":${r.websocketHeartbeats}`;
  if (r.protocol !== undefined) out += `,"protocol":${str(r.protocol)}`;
  if (r.grpcStatus !== undefined) out += `,"grpcStatus":${r.grpcStatus}`;
  return `${out}}`;
}
