/**
 * The client-leg settings one request runs under. nginx takes
 * client_max_body_size, client_body_timeout, send_timeout and the
 * keep-alive rules from the location a request is routed to
 * (ngx_http_update_location_config); the model has them resolved for every
 * server and location, and a request picks its set when it is routed. client_header_timeout is not here: a header is read
 * before its Host is known, so the address's default server gives it.
 */
import { Buffer } from 'node:buffer';
import type { HttpLocation, HttpServer } from '../../config/model.js';

export interface ClientLimits {
  /** Idle time after this request's response before the next one; 0: no keep-alive. */
  readonly keepaliveTimeoutMs: number;
  /** The `Connection: keep-alive` lines (and `Keep-Alive: timeout=N` when configured) ending the head. */
  readonly keepAliveLines: string;
  /** The same lines as bytes: they end a head passed on as bytes (an upstream's, proxied). */
  readonly keepAliveBytes: Buffer;
  readonly keepaliveRequests: number;
  readonly keepaliveTimeMs: number;
  readonly clientBodyTimeoutMs: number;
  readonly sendTimeoutMs: number;
  /** Bytes; 0 = unlimited. */
  readonly clientMaxBodySize: number;
  /** Request body bytes kept for a repeat on another connection. */
  readonly clientBodyBufferSize: number;
  /** access_log: whether a request routed here gets a `request` line. */
  readonly accessLog: boolean;
}

/**
 * The settings of a request routed to `location`, or to `server` when no
 * location matched (404) or before routing. Both are resolved in the model
 * (config/validate.ts); this only builds the bytes sent with each response.
 */
export function clientLimits(server: HttpServer, location?: HttpLocation): ClientLimits {
  const from = location ?? server;
  const header = from.keepaliveHeaderTimeoutMs;
  // Built once: every keep-alive response ends with these bytes.
  const keepAliveLines =
    header === undefined
      ? 'Connection: keep-alive\r\n\r\n'
      : `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(header / 1000)}\r\n\r\n`;
  return {
    keepaliveTimeoutMs: from.keepaliveTimeoutMs,
    keepAliveLines,
    keepAliveBytes: Buffer.from(keepAliveLines, 'latin1'),
    keepaliveRequests: from.keepaliveRequests,
    keepaliveTimeMs: from.keepaliveTimeMs,
    clientBodyTimeoutMs: from.clientBodyTimeoutMs,
    sendTimeoutMs: from.sendTimeoutMs,
    clientMaxBodySize: from.clientMaxBodySize,
    clientBodyBufferSize: from.clientBodyBufferSize,
    accessLog: from.accessLog,
  };
}
