/**
 * `configureServer`: a Node HTTP server behind a load balancer that pools
 * connections to it (AWS ALB, GCP ALB, nginx upstream keepalive, Envoy...).
 *
 * The classic 502: Node closes an idle keep-alive connection after
 * `keepAliveTimeout` (5 s by default), the LB keeps it for its own idle
 * timeout (60 s on an ALB) and sends the next request into a connection the
 * server is closing; the LB answers that request with a 502. The server must
 * keep idle connections longer than the LB does, so the LB always closes
 * first. Accepted sockets also get TCP keepalive, so an L4 box between the LB
 * and the server does not forget them.
 */
import type { Server as HttpServer } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import { applyKeepalive } from '../keepalive/socket.js';
import { keepaliveFor, type LbIdle, ruleFor } from './presets.js';

export interface ConfigureServerOptions extends LbIdle {
  /**
   * Called when keepalive cannot be applied to an accepted socket (the
   * connection goes on without it). Default: one process warning.
   */
  onKeepaliveError?: (error: Error, socket: Socket) => void;
}

/** What `configureServer` set: `before` and `after` in ms (0 = no timeout). */
export interface ServerSettings {
  kind: 'http1' | 'http2';
  /** http1: `server.keepAliveTimeout`. */
  keepAliveTimeout?: { before: number; after: number };
  /** http1: `server.headersTimeout`, which Node wants above keepAliveTimeout. */
  headersTimeout?: { before: number; after: number };
  /** http1: `server.requestTimeout`, raised only where it would sit below headersTimeout. */
  requestTimeout?: { before: number; after: number };
  /** http2: the session idle timeout (`server.timeout`, applied to every session). */
  sessionTimeout?: { before: number; after: number };
  /** TCP keepalive applied to every accepted socket. */
  keepalive: { idle: number; interval: number; count: number };
}

type AnyServer = HttpServer | Http2Server | Http2SecureServer;

/** A timeout of 0 means none: no idle close, nothing to raise. */
function raised(before: number, wanted: number): number {
  return before === 0 || before >= wanted ? before : wanted;
}

/**
 * Makes `server` (from `http.createServer`, `https.createServer`,
 * `http2.createServer` or `http2.createSecureServer`) outlast the LB's idle
 * timeout and probe its accepted sockets:
 * - http/https: `keepAliveTimeout` raised to the recommended HTTP server
 *   keep-alive timeout (above `lbIdle`), `headersTimeout` to 1 s above that
 *   (Node's rule since the ALB incidents of Node 10-12), `requestTimeout`
 *   (when set) to at least `headersTimeout`, as `http.createServer` requires;
 * - http2: the session idle timeout raised the same way (0, Node's default,
 *   stays: no idle close at all);
 * - TCP keepalive (`applyKeepalive`) on every accepted socket.
 * Values already longer are left alone. Returns what it set.
 */
export function configureServer(server: AnyServer, opts: ConfigureServerOptions): ServerSettings {
  const r = ruleFor(opts);
  const keepalive = keepaliveFor(r);
  const serverIdleMs = r.httpServerKeepaliveTimeout * 1000;
  let warned = false;
  const onError =
    opts.onKeepaliveError ??
    ((error: Error) => {
      if (warned) return;
      warned = true;
      process.emitWarning(`keepwire: keepalive not applied to accepted sockets: ${error.message}`);
    });
  // TLS servers emit 'connection' with the TCP socket, before the handshake.
  server.on('connection', (socket: Socket) => {
    try {
      applyKeepalive(socket, keepalive);
    } catch (error) {
      onError(error as Error, socket);
    }
  });
  const settings: ServerSettings = {
    kind: 'keepAliveTimeout' in server ? 'http1' : 'http2',
    keepalive: { idle: keepalive.idle, interval: keepalive.interval, count: keepalive.count },
  };
  if ('keepAliveTimeout' in server) {
    const s = server as HttpServer;
    const kat = { before: s.keepAliveTimeout, after: raised(s.keepAliveTimeout, serverIdleMs) };
    s.keepAliveTimeout = kat.after;
    settings.keepAliveTimeout = kat;
    const wantedHeaders = kat.after === 0 ? 0 : kat.after + 1000;
    const ht = { before: s.headersTimeout, after: raised(s.headersTimeout, wantedHeaders) };
    s.headersTimeout = ht.after;
    settings.headersTimeout = ht;
    const rt = { before: s.requestTimeout, after: raised(s.requestTimeout, ht.after) };
    s.requestTimeout = rt.after;
    settings.requestTimeout = rt;
  } else {
    // Node keeps the session idle timeout in `timeout` (0 by default), which its types omit.
    const s = server as Http2Server & { timeout: number };
    const st = { before: s.timeout, after: raised(s.timeout, serverIdleMs) };
    if (st.after !== st.before) s.setTimeout(st.after);
    settings.sessionTimeout = st;
  }
  return settings;
}
