/**
 * Options objects for the client libraries people already run behind load
 * balancers, each derived from one rule: `recommend()` in
 * keepalive/recommend.ts (kernel probes every max(idle, interval) below the LB
 * idle; pooled connections idle out before the LB forgets them; servers keep
 * idle connections longer than the LB; application pings at the probe period).
 * No preset does its own arithmetic beyond converting seconds to the unit the
 * library takes.
 */
import type { buildConnector } from 'undici';
import { keepaliveConnector } from '../keepalive/pool.js';
import { type Recommendation, recommend } from '../keepalive/recommend.js';
import type { KeepaliveOptions } from '../keepalive/socket.js';

/** The load balancer (or NAT, firewall, mesh) in the path. */
export interface LbIdle {
  /** Seconds a connection may stay idle before the LB forgets it (AWS NLB 350, ALB 60, Azure 240...). */
  lbIdle: number;
  /** Seconds before the LB deadline the first keepalive probe goes out; default a third of `lbIdle`. */
  margin?: number;
}

/** The recommendation every preset reads. */
export function ruleFor(lb: LbIdle | Recommendation): Recommendation {
  if ('keepalive' in lb) return lb;
  return recommend(lb.lbIdle, lb.margin === undefined ? {} : { margin: lb.margin });
}

const ms = (seconds: number) => seconds * 1000;

/** TCP keepalive for `applyKeepalive`, `withKeepalive` and `keepaliveConnector`. */
export function keepaliveFor(lb: LbIdle | Recommendation): Required<Omit<KeepaliveOptions, 'userTimeout'>> {
  const k = ruleFor(lb).keepalive;
  return { enable: true, idle: k.idle, interval: k.interval, count: k.count };
}

/** node-postgres (`pg`) `Pool`/`Client` options. */
export interface PgPreset {
  /** Client: SO_KEEPALIVE on the connection (node-postgres calls `socket.setKeepAlive`). */
  keepAlive: true;
  /** Client: TCP_KEEPIDLE in ms. Node then probes every second, 10 times (libuv). */
  keepAliveInitialDelayMillis: number;
  /** Pool: an idle pooled client is closed before the LB forgets its connection. */
  idleTimeoutMillis: number;
}

/**
 * `new pg.Pool({ ...connection, ...pgPreset({ lbIdle: 350 }) })`. The keepalive
 * keeps a checked-out or pooled connection known to the LB; the pool idle
 * timeout is the second line for pools on hosts where keepalive cannot reach
 * the box (an L7 proxy counts data, not probes).
 */
export function pgPreset(lb: LbIdle | Recommendation): PgPreset {
  const r = ruleFor(lb);
  return {
    keepAlive: true,
    keepAliveInitialDelayMillis: ms(r.keepalive.idle),
    idleTimeoutMillis: ms(r.clientPoolIdleTimeout),
  };
}

/** ioredis `Redis` options. */
export interface IoredisPreset {
  /** TCP_KEEPIDLE in ms (ioredis calls `socket.setKeepAlive(true, keepAlive)`; its default is 30 s). */
  keepAlive: number;
}

/**
 * `new Redis({ ...ioredisPreset({ lbIdle: 600 }) })`. A Redis client holds one
 * long-lived connection instead of a pool, so there is no pool idle timeout:
 * the connection's probes must reach the LB before its idle timeout. The
 * server's own `tcp-keepalive` (redis.conf, default 300 s) must be below the
 * LB idle as well for connections the client forgets (see
 * `keepwire recommend --for redis`).
 */
export function ioredisPreset(lb: LbIdle | Recommendation): IoredisPreset {
  return { keepAlive: ms(ruleFor(lb).keepalive.idle) };
}

/** node-redis (npm `redis`, v5 and later) `createClient` options. */
export interface RedisPreset {
  socket: {
    /** SO_KEEPALIVE (node-redis' default is already true). */
    keepAlive: true;
    /**
     * TCP_KEEPIDLE in ms (node-redis passes it to `net.connect`; its default is
     * 30 s). node-redis v4 took the delay in `socket.keepAlive` itself
     * (`keepAlive: number | false`, default 5000).
     */
    keepAliveInitialDelay: number;
  };
}

/**
 * `createClient({ url, ...redisPreset({ lbIdle: 600 }) })`, or with socket
 * options of your own `socket: { ...redisPreset(lb).socket, tls: true }`. As
 * for ioredis: one long-lived connection, so the probes must reach the LB
 * before its idle timeout. An L7 idle close (Azure Cache for Redis counts
 * commands, not probes) needs node-redis' own `pingInterval` below it.
 */
export function redisPreset(lb: LbIdle | Recommendation): RedisPreset {
  return { socket: { keepAlive: true, keepAliveInitialDelay: ms(ruleFor(lb).keepalive.idle) } };
}

/** @grpc/grpc-js (and grpc core) channel options. */
export interface GrpcChannelPreset {
  'grpc.keepalive_time_ms': number;
  'grpc.keepalive_timeout_ms': number;
  /** Ping an idle channel too: an idle channel is the one the LB forgets. */
  'grpc.keepalive_permit_without_calls': 1;
}

/** `new Client(target, credentials, grpcChannelOptions({ lbIdle: 350 }))`. */
export function grpcChannelOptions(lb: LbIdle | Recommendation): GrpcChannelPreset {
  const p = ruleFor(lb).appPing;
  return {
    'grpc.keepalive_time_ms': ms(p.period),
    'grpc.keepalive_timeout_ms': ms(p.timeout),
    'grpc.keepalive_permit_without_calls': 1,
  };
}

/** gRPC server options: accept the clients' pings, and ping idle clients too. */
export interface GrpcServerPreset {
  /**
   * grpc core servers (C++, Python, Ruby...) police pings: a client pinging
   * more often than this without data gets GOAWAY too_many_pings. (grpc-js
   * servers do not police and ignore it.)
   */
  'grpc.http2.min_ping_interval_without_data_ms': number;
  /** The server side of permit_without_calls: pings on a connection with no call are allowed. */
  'grpc.keepalive_permit_without_calls': 1;
  /** The server's own pings (grpc-js and core): it keeps the LB's session and notices dead clients. */
  'grpc.keepalive_time_ms': number;
  'grpc.keepalive_timeout_ms': number;
}

/** `new Server(grpcServerOptions({ lbIdle: 350 }))`. */
export function grpcServerOptions(lb: LbIdle | Recommendation): GrpcServerPreset {
  const p = ruleFor(lb).appPing;
  return {
    'grpc.http2.min_ping_interval_without_data_ms': ms(p.serverMinInterval),
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.keepalive_time_ms': ms(p.period),
    'grpc.keepalive_timeout_ms': ms(p.timeout),
  };
}

/** A WebSocket heartbeat (the `ws` package has none built in: `ws.ping()` on a timer). */
export interface WsPreset {
  /** Send `ws.ping()` this often (ms). */
  pingIntervalMs: number;
  /** `ws.terminate()` when no pong came this long (ms) after a ping. */
  pongTimeoutMs: number;
}

/** The ping interval for a `ws` WebSocket (or any WebSocket client or server) behind the LB. */
export function wsPreset(lb: LbIdle | Recommendation): WsPreset {
  const p = ruleFor(lb).appPing;
  return { pingIntervalMs: ms(p.period), pongTimeoutMs: ms(p.timeout) };
}

/** Node `http.Agent`/`https.Agent` options. */
export interface HttpAgentPreset {
  keepAlive: true;
  /** TCP_KEEPIDLE in ms, which the agent sets each time a socket returns to the pool. */
  keepAliveMsecs: number;
  /**
   * Socket timeout in ms: the agent destroys a free (pooled) socket when it
   * fires, so idle sockets go before the LB forgets them. It also applies to
   * sockets in use (the request emits 'timeout').
   */
  timeout: number;
}

/**
 * `withKeepalive(new http.Agent(httpAgentOptions(lb)), keepaliveFor(lb))`: the
 * hook keeps interval and count, which the agent's own setKeepAlive resets.
 */
export function httpAgentOptions(lb: LbIdle | Recommendation): HttpAgentPreset {
  const r = ruleFor(lb);
  return {
    keepAlive: true,
    keepAliveMsecs: ms(r.keepalive.idle),
    timeout: ms(r.clientPoolIdleTimeout),
  };
}

/** undici `Pool`/`Agent`/`Client` options. */
export interface UndiciPreset {
  /** Idle pooled connections are closed after this (ms), before the LB forgets them. */
  keepAliveTimeout: number;
  /** Caps a server's `Keep-Alive: timeout=` hint the same way. */
  keepAliveMaxTimeout: number;
  /** undici's connector with the keepalive applied (`keepaliveConnector`). */
  connect: buildConnector.connector;
}

/** `new Pool(origin, undiciPoolOptions({ lbIdle: 350 }))`. */
export function undiciPoolOptions(
  lb: LbIdle | Recommendation,
  connectOptions: buildConnector.BuildOptions = {},
): UndiciPreset {
  const r = ruleFor(lb);
  return {
    keepAliveTimeout: ms(r.clientPoolIdleTimeout),
    keepAliveMaxTimeout: ms(r.clientPoolIdleTimeout),
    connect: keepaliveConnector(keepaliveFor(r), connectOptions),
  };
}
