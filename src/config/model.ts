/**
 * The typed configuration model: what `serve` runs and `check` audits.
 *
 * It is produced from the AST by the directive table with every default
 * already merged (nginx semantics: a directive at an outer level is inherited
 * by inner levels unless they set it; each table entry's `bind` says which
 * field it fills and how it merges). Every record is fully resolved: runtime
 * code reads only this model, never config text, and never merges levels. Durations are milliseconds (`...Ms`), keepalive specs are
 * kernel units (seconds, probes).
 */
import type { KeepaliveSpec } from '../keepalive/spec.js';

/** Where a model element came from, for diagnostics and logs. */
export interface SourceRef {
  file: string;
  line: number;
  col: number;
}

/** A TCP endpoint. `host` is an IP literal or a name; IPv6 without brackets. */
export interface Address {
  host: string;
  port: number;
  /** The text as written (`127.0.0.1:5432`, `[::1]:80`, `8080`). */
  text: string;
}

export interface UpstreamServer {
  address: Address;
  /** Default 1. */
  weight: number;
  /** Default 1; 0 disables passive health accounting for this server. */
  maxFails: number;
  /** Default 10s. Both the window in which maxFails are counted and how long the server stays out. */
  failTimeoutMs: number;
  /** Default 0 = unlimited. */
  maxConns: number;
  backup: boolean;
  down: boolean;
  /**
   * keepwire extension `keepalive_timeout=T` on an http upstream server: the
   * server's own keep-alive timeout, when the operator knows it. Used by
   * `check` only; absent when not given.
   */
  keepaliveTimeoutMs?: number;
  source: SourceRef;
}

export type Balancing =
  | { kind: 'round_robin' }
  | { kind: 'least_conn' }
  /** `hash KEY [consistent]`; KEY may contain variables such as `$remote_addr`. */
  | { kind: 'hash'; key: string; consistent: boolean }
  /** `random [two]`: with `two`, power of two choices by least connections. */
  | { kind: 'random'; two: boolean };

export interface UpstreamGroup {
  name: string;
  servers: UpstreamServer[];
  balancing: Balancing;
  source: SourceRef;
}

/** HTTP upstreams add the keep-alive pool settings (ngx_http_upstream_keepalive_module). */
export interface HttpUpstreamGroup extends UpstreamGroup {
  /** `keepalive N`: idle connections kept per worker; 0 = no pooling (nginx default: directive absent). */
  keepalive: number;
  /** Default 60s. */
  keepaliveTimeoutMs: number;
  /** Default 1000. */
  keepaliveRequests: number;
  /** Default 1h. */
  keepaliveTimeMs: number;
}

export interface Listen {
  address: Address;
  /** `default_server` (http): the address's default server; absent: not marked. */
  defaultServer?: true;
  /** Absent: the socket keeps the system's keepalive (off unless something enables it). */
  soKeepalive?: KeepaliveSpec;
  /** Default 511, as nginx on Linux. */
  backlog: number;
  reuseport: boolean;
  /** `ssl`: connections on this address are TLS (the server's ssl_* settings); absent: plain. */
  ssl?: true;
  source: SourceRef;
}

/** A protocol name of `ssl_protocols` / `proxy_ssl_protocols`, as OpenSSL and Node spell it. */
export type TlsProtocol = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** One `ssl_certificate` with the `ssl_certificate_key` of the same rank (nginx pairs them in order). */
export interface CertificatePair {
  certificate: string;
  key: string;
  certificateSource: SourceRef;
  keySource: SourceRef;
}

/** `ssl_session_cache`: `off` (no cache), `none` (nginx: say resumable, keep nothing), or an in-process cache of `size` sessions. */
export type SessionCache = { kind: 'off' } | { kind: 'none' } | { kind: 'cache'; size: number; text: string };

/** The TLS settings of a server terminating `listen ... ssl` (http and stream alike). */
export interface ServerTls {
  /** Innermost level that sets any ssl_certificate; empty when none is set. */
  sslCertificates: CertificatePair[];
  /** Default TLSv1.2 TLSv1.3. */
  sslProtocols: TlsProtocol[];
  /** OpenSSL cipher list, default HIGH:!aNULL:!MD5 as nginx. */
  sslCiphers: string;
  /** Default off. */
  sslPreferServerCiphers: boolean;
  /** Default none. */
  sslSessionCache: SessionCache;
  /** Default 5m: how long a session (cache entry or ticket) may be resumed. */
  sslSessionTimeoutMs: number;
  /** Default on. */
  sslSessionTickets: boolean;
  /** Default 60s. */
  sslHandshakeTimeoutMs: number;
}

/** How keepwire speaks TLS to an upstream (`proxy_pass https://`, stream `proxy_ssl on`). */
export interface UpstreamTls {
  /** Default off, as nginx. */
  proxySslVerify: boolean;
  /** CA file for proxy_ssl_verify; absent: the system's CAs (Node's bundled store). */
  proxySslTrustedCertificate?: string;
  /** Default 1, as nginx. */
  proxySslVerifyDepth: number;
  /** Default off: no SNI is sent. */
  proxySslServerName: boolean;
  /** Default: the host of proxy_pass. */
  proxySslName?: string;
  proxySslCertificate?: string;
  proxySslCertificateKey?: string;
  /** Default TLSv1.2 TLSv1.3. */
  proxySslProtocols: TlsProtocol[];
  /** Default DEFAULT (OpenSSL's list), as nginx. */
  proxySslCiphers: string;
  /** Default on: sessions are resumed on new connections to the same server. */
  proxySslSessionReuse: boolean;
  /** Where the proxy_ssl_* files were named (for `check`); absent when none is. */
  proxySslSources?: { trustedCertificate?: SourceRef; certificate?: SourceRef; certificateKey?: SourceRef };
}

/** The target of proxy_pass: a named group, or a single address (an implicit one-server group). */
export type ProxyTarget = { kind: 'group'; name: string } | { kind: 'address'; address: Address };

export interface StreamServer extends ServerTls, UpstreamTls {
  listens: Listen[];
  /** proxy_ssl, default off: the upstream leg speaks TLS. */
  proxySsl: boolean;
  proxyPass: ProxyTarget;
  /** proxy_timeout, default 10m: idle session timeout (no byte either way). */
  proxyTimeoutMs: number;
  /** Default 60s. */
  proxyConnectTimeoutMs: number;
  /** proxy_socket_keepalive: off (default), on (system values) or a full spec. */
  proxySocketKeepalive: KeepaliveSpec;
  /** Default on. */
  proxyNextUpstream: boolean;
  /** Default 0 = unlimited. */
  proxyNextUpstreamTries: number;
  /** Default 0 = unlimited. */
  proxyNextUpstreamTimeoutMs: number;
  /** Default off: FIN at idle expiry; on: RST both ways. */
  resetTimedoutConnection: boolean;
  /** access_log, default on: a line per session; off: only sessions that failed or were cut. */
  accessLog: boolean;
  lbIdleTimeoutMs?: number;
  lbKind: LbKind;
  source: SourceRef;
}

export interface StreamBlock {
  upstreams: Map<string, UpstreamGroup>;
  servers: StreamServer[];
}

export type NextUpstreamCondition =
  | 'error'
  | 'timeout'
  | 'invalid_header'
  | 'http_500'
  | 'http_502'
  | 'http_503'
  | 'http_504'
  | 'http_403'
  | 'http_404'
  | 'http_429'
  | 'non_idempotent';

/** `websocket_heartbeat TIME [both|client|upstream]`: unsolicited Pongs into a quiet WebSocket tunnel. */
export interface WebSocketHeartbeat {
  intervalMs: number;
  /** Which peer(s) receive the Pongs. */
  side: 'both' | 'client' | 'upstream';
}

/** `lb_kind`: l4 forwards segments (TCP keepalive crosses it), l7 terminates TCP (only data crosses it). */
export type LbKind = 'l4' | 'l7';

export type LocalPage = 'metrics' | 'stub_status' | 'status';

export interface HttpLocation extends UpstreamTls {
  prefix: string;
  /** At most one of proxyPass, returnDirective, health and page is set (exactly one answers). */
  /** proxy_pass (http, https) or grpc_pass (grpc, grpcs: HTTP/2 upstreams, src/proxy/grpc/). */
  proxyPass?: { scheme: 'http' | 'https' | 'grpc' | 'grpcs'; target: ProxyTarget; text: string };
  returnDirective?: { code: number; text?: string };
  /** `metrics;`, `stub_status;` or `status;`: a page keepwire answers itself (src/metrics/); then neither of the above is set. */
  page?: LocalPage;
  /** status_connections: rows of the `status` page's connection table (the most idle). */
  statusConnections: number;
  /** `health;`: answers the load balancer's health check itself (200 ok, 503 draining once stopping). */
  health: boolean;
  proxyConnectTimeoutMs: number;
  proxyReadTimeoutMs: number;
  proxySendTimeoutMs: number;
  /** Default '1.0' as nginx (1.1 needed for upstream keep-alive before nginx 1.29.7). */
  proxyHttpVersion: '1.0' | '1.1';
  /** In order; an empty value removes the header, as in nginx. */
  proxySetHeaders: { name: string; value: string }[];
  proxySocketKeepalive: KeepaliveSpec;
  /** Default ['error', 'timeout']; empty for `off`. */
  proxyNextUpstream: NextUpstreamCondition[];
  proxyNextUpstreamTries: number;
  /** Default 0 = unlimited: how long after the first try a request may still go to another server. */
  proxyNextUpstreamTimeoutMs: number;
  /**
   * The client-leg settings of a request routed here, resolved through
   * location, server and http (nginx allows them in location and takes them
   * from the location a request is routed to): see HttpServer for each.
   */
  keepaliveTimeoutMs: number;
  keepaliveHeaderTimeoutMs?: number;
  keepaliveRequests: number;
  keepaliveTimeMs: number;
  clientBodyTimeoutMs: number;
  sendTimeoutMs: number;
  clientMaxBodySize: number;
  clientBodyBufferSize: number;
  /** grpc_ping_interval, 0 = off (default): HTTP/2 PING keepalive on grpc_pass upstream connections (gRPC's keepalive_time). */
  grpcPingIntervalMs: number;
  /** grpc_ping_timeout, default 20s (gRPC's keepalive_timeout). */
  grpcPingTimeoutMs: number;
  /** grpc_ping_without_calls, default off (gRPC's keepalive_permit_without_calls). */
  grpcPingWithoutCalls: boolean;
  /** websocket_heartbeat, default off (null). */
  websocketHeartbeat: WebSocketHeartbeat | null;
  /** access_log, default on (JSON lines on standard output); off: no `request` line for requests routed here. Inherited http → server → location. */
  accessLog: boolean;
  source: SourceRef;
}

/**
 * A server's settings for the client leg. client_header_timeout and the
 * header settings (buffers, max_headers, merge_slashes, underscores and
 * invalid headers) apply before the Host is known, so the address's
 * default server gives them; the rest are taken per request from the server
 * chosen by Host and the location chosen by path, as in nginx.
 */
export interface HttpServer extends ServerTls {
  listens: Listen[];
  /** Empty: matches any Host. */
  serverNames: string[];
  /** keepalive_timeout first value, default 75s; 0 disables client keep-alive. */
  keepaliveTimeoutMs: number;
  /** Optional second value, sent as `Keep-Alive: timeout=N`. */
  keepaliveHeaderTimeoutMs?: number;
  keepaliveRequests: number;
  keepaliveTimeMs: number;
  clientHeaderTimeoutMs: number;
  /** client_header_buffer_size, default 1k (the line limit when larger than the large buffers' size). */
  clientHeaderBufferSize: number;
  /** large_client_header_buffers, default 4 8k: a line over `size` is 414/400, a head over `number` × `size` 400. */
  largeClientHeaderBuffers: { number: number; size: number };
  /** max_headers, default 1000. */
  maxHeaders: number;
  /** merge_slashes, default on: `//` counts as `/` when locations are matched. */
  mergeSlashes: boolean;
  /** underscores_in_headers, default off. */
  underscoresInHeaders: boolean;
  /** ignore_invalid_headers, default on: invalid header names are dropped. */
  ignoreInvalidHeaders: boolean;
  clientBodyTimeoutMs: number;
  sendTimeoutMs: number;
  /** Bytes; 0 = unlimited. Default 1m. */
  clientMaxBodySize: number;
  /**
   * client_body_buffer_size, default 64k: request body bytes kept in memory
   * so a request can be repeated (stale connection, next upstream); a larger
   * body is streamed and never repeated.
   */
  clientBodyBufferSize: number;
  /**
   * access_log of the server (http → server), default on: requests no
   * location matches; the default server's also covers requests answered
   * before routing (400, 408, 414).
   */
  accessLog: boolean;
  /** http2 on: h2c with prior knowledge on cleartext listeners (default server's). Default off. */
  http2: boolean;
  /** http2_max_concurrent_streams, default 128. */
  http2MaxConcurrentStreams: number;
  /** http2_ping_interval, 0 = off (default). */
  http2PingIntervalMs: number;
  /** http2_ping_timeout, default 20s. */
  http2PingTimeoutMs: number;
  locations: HttpLocation[];
  lbIdleTimeoutMs?: number;
  lbKind: LbKind;
  source: SourceRef;
}

export interface HttpBlock {
  upstreams: Map<string, HttpUpstreamGroup>;
  servers: HttpServer[];
}

/** `worker_processes auto | N`. */
export type WorkerProcesses = number | 'auto';

export interface Config {
  /** The main file; includes are resolved relative to the including file. */
  file: string;
  lbIdleTimeoutMs?: number;
  lbKind: LbKind;
  /** Global cap on concurrent client connections (worker_connections-like). */
  workerConnections: number;
  /** `worker_processes`: 1 is one process; `auto` is resolved by the master to the CPUs available. */
  workerProcesses: WorkerProcesses;
  /** Grace period for draining sessions on SIGTERM/SIGINT. */
  shutdownTimeoutMs: number;
  /** `shutdown_delay`: on a graceful stop, how long to keep serving (health 503, `Connection: close`) before closing the listeners. */
  shutdownDelayMs: number;
  stream?: StreamBlock;
  http?: HttpBlock;
}
