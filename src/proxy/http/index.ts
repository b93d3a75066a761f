/**
 * The HTTP (L7) proxy of one configuration generation: a frontend per
 * listening address, the upstream groups with their keep-alive caches, and
 * the routes from locations to them. Built from the model, started on
 * listeners the runtime owns, drained and stopped as a unit.
 */
import { recordDefaults } from '../../config/directives.js';
import type {
  HttpBlock,
  HttpLocation,
  HttpUpstreamGroup,
  Listen,
  UpstreamGroup,
  UpstreamTls,
} from '../../config/model.js';
import { compileKeepalive } from '../../keepalive/applier.js';
import { type LiveGroup, liveHttp } from '../../metrics/live.js';
import { upstreamStats } from '../../metrics/stats.js';
import { type Upstream, Upstreams } from '../../upstream/index.js';
import { type Generation, GenerationBuildError } from '../generation.js';
import type { GrpcRoute } from '../grpc/call.js';
import { GrpcPool } from '../grpc/pool.js';
import type { Listener } from '../listener.js';
import { listenKey } from '../listener.js';
import { makeTicketKeys } from '../tls.js';
import { UpstreamTlsClient } from '../tls-upstream.js';
import type { Route } from './exchange.js';
import { ServerTable, type VirtualServer, virtualServer } from './routing.js';
import { type HttpDeps, HttpFrontend } from './server.js';
import { GroupPool } from './transport.js';

export type {
  HttpLogRecord,
  RefusedRecord,
  RequestEndReason,
  RequestRecord,
  RetryRecord,
  WebSocketRelayRecord,
} from './log.js';
export { requestFields, requestJson } from './log.js';
export { HttpFrontend } from './server.js';

/** The proxy_ssl_* fields: locations equal in these (and proxy_pass host) share one TLS client and cache. */
const UPSTREAM_TLS_FIELDS = [
  'proxySslVerify',
  'proxySslTrustedCertificate',
  'proxySslVerifyDepth',
  'proxySslServerName',
  'proxySslName',
  'proxySslCertificate',
  'proxySslCertificateKey',
  'proxySslProtocols',
  'proxySslCiphers',
  'proxySslSessionReuse',
] as const satisfies readonly (keyof UpstreamTls)[];

export class HttpBuildError extends GenerationBuildError {
  override name = 'HttpBuildError';
}

/** An address of `http {}` and the listen directive that sets its socket parameters. */
export interface HttpAddress {
  key: string;
  listen: Listen;
  servers: VirtualServer[];
  /** The server whose listen says `default_server` (check allows one per address); else the first. */
  defaultServer?: VirtualServer;
  /** `ssl` on any listen of the address (as nginx: the parameter is the address's). */
  ssl: boolean;
}

/** Groups the servers of a block by listening address (several may share one, chosen by server_name). */
export function httpAddresses(block: HttpBlock): HttpAddress[] {
  const byKey = new Map<string, HttpAddress>();
  // Port 0 asks for a fresh port per listen directive; servers sharing that
  // directive (the same model object) share the port.
  const anonymous = new Map<Listen, string>();
  for (const model of block.servers) {
    const vs = virtualServer(model);
    for (const listen of model.listens) {
      let key = listenKey(listen);
      if (listen.address.port === 0) {
        key = anonymous.get(listen) ?? `${key}#http${anonymous.size}`;
        anonymous.set(listen, key);
      }
      let at = byKey.get(key);
      if (at === undefined) {
        at = { key, listen, servers: [vs], ssl: false };
        byKey.set(key, at);
      } else {
        if (!at.servers.includes(vs)) at.servers.push(vs);
        if (at.listen.soKeepalive === undefined && listen.soKeepalive !== undefined) at.listen = listen;
      }
      if (listen.defaultServer && at.defaultServer === undefined) at.defaultServer = vs;
      if (listen.ssl) at.ssl = true;
    }
  }
  return [...byKey.values()];
}

/** `proxy_pass ADDRESS` has no upstream block: the table's pool defaults, `keepalive` unset (no pooling). */
const NO_POOL = recordDefaults('http_upstream') as unknown as Pick<
  HttpUpstreamGroup,
  'keepalive' | 'keepaliveTimeoutMs' | 'keepaliveRequests' | 'keepaliveTimeMs'
>;

export class HttpGeneration implements Generation {
  readonly kind = 'http';
  readonly frontends: HttpFrontend[] = [];
  readonly pools: GroupPool[] = [];
  /** The HTTP/2 pools of grpc_pass locations (src/proxy/grpc/). */
  readonly grpcPools: GrpcPool[] = [];
  private readonly routes = new Map<HttpLocation, Route | GrpcRoute>();
  /** For the metrics and status pages (src/metrics/live.ts). */
  readonly groups: LiveGroup[] = [];
  readonly statusLocations: HttpLocation[] = [];
  readonly lbIdleTimeoutMs: number | undefined;

  constructor(
    block: HttpBlock,
    readonly addresses: readonly HttpAddress[],
    deps: HttpDeps,
  ) {
    // One runtime Upstream per group for the generation, and its keep-alive cache.
    const upstreams = new Upstreams<HttpUpstreamGroup>(block.upstreams);
    // A group's keep-alive cache per way of speaking to it: plain, or each
    // distinct set of proxy_ssl_* settings (a TLS connection is reused only
    // by requests that would have opened it the same way).
    const pools = new Map<Upstream, Map<string, GroupPool>>();
    const tlsClients = new Map<string, UpstreamTlsClient>();
    const grpcPools = new Map<Upstream, Map<string, GrpcPool>>();
    let lb: number | undefined;
    for (const server of block.servers) {
      if (server.lbIdleTimeoutMs !== undefined)
        lb = Math.min(lb ?? server.lbIdleTimeoutMs, server.lbIdleTimeoutMs);
      for (const location of server.locations) {
        if (location.page === 'status') this.statusLocations.push(location);
        const pass = location.proxyPass;
        if (pass === undefined) continue;
        const entry = upstreams.entry(pass.target, location.source);
        if (entry === undefined) {
          const s = location.source;
          throw new HttpBuildError(`${s.file}:${s.line}:${s.col}: no upstream group "${pass.text}"`);
        }
        const { upstream } = entry;
        const grpc = pass.scheme === 'grpc' || pass.scheme === 'grpcs';
        let tls: UpstreamTlsClient | undefined;
        let tlsKey = '';
        if (pass.scheme === 'https' || pass.scheme === 'grpcs') {
          const passHost = pass.target.kind === 'group' ? pass.target.name : pass.target.address.host;
          tlsKey = JSON.stringify([passHost, ...UPSTREAM_TLS_FIELDS.map((f) => location[f])]);
          tls = tlsClients.get(tlsKey);
          if (tls === undefined) {
            tls = new UpstreamTlsClient(location, passHost, location.source);
            tlsClients.set(tlsKey, tls);
          }
        }
        if (grpc) {
          this.routes.set(location, this.grpcRoute(location, entry, tls, tlsKey, grpcPools, deps));
          continue;
        }
        const byTls = pools.get(upstream) ?? new Map<string, GroupPool>();
        pools.set(upstream, byTls);
        let pool = byTls.get(tlsKey);
        if (pool === undefined) {
          // proxy_pass to an address has no keep-alive cache, as in nginx.
          const settings = pass.target.kind === 'group' ? (entry.group as HttpUpstreamGroup) : NO_POOL;
          const stats = upstreamStats(upstream.name);
          stats.pool = { keepalive: settings.keepalive, keepaliveTimeoutMs: settings.keepaliveTimeoutMs };
          pool = new GroupPool(settings, stats, tls);
          byTls.set(tlsKey, pool);
          this.pools.push(pool);
          this.groups.push({ upstream, pool, stats });
        }
        const stats = pool.stats!;
        const keepalive = compileKeepalive(
          'proxy_socket_keepalive',
          location.proxySocketKeepalive,
          deps.keepaliveFailed,
        );
        stats.socketKeepalive.add(keepalive.value);
        this.routes.set(location, {
          upstream,
          pool,
          reuse: location.proxyHttpVersion === '1.1' && pool.settings.keepalive > 0,
          conditions: new Set(location.proxyNextUpstream),
          keepalive,
          stats,
        });
      }
    }
    this.lbIdleTimeoutMs = lb;
    // One set of session ticket keys per generation, shared by its ssl addresses (tls.ts).
    const ticketKeys = addresses.some((a) => a.ssl) ? (deps.ticketKeys ?? makeTicketKeys()) : undefined;
    for (const address of addresses)
      this.frontends.push(
        new HttpFrontend(
          address.listen,
          new ServerTable(address.servers, address.defaultServer ?? address.servers[0]),
          this.routes,
          deps,
          address.ssl ? ticketKeys : undefined,
          address.servers,
        ),
      );
  }

  /** A grpc_pass location's route: the group's HTTP/2 pool for this TLS setting (one per group and setting, as the HTTP caches). */
  private grpcRoute(
    location: HttpLocation,
    entry: { upstream: Upstream; group: UpstreamGroup },
    tls: UpstreamTlsClient | undefined,
    tlsKey: string,
    grpcPools: Map<Upstream, Map<string, GrpcPool>>,
    deps: HttpDeps,
  ): GrpcRoute {
    const { upstream } = entry;
    const byTls = grpcPools.get(upstream) ?? new Map<string, GrpcPool>();
    grpcPools.set(upstream, byTls);
    let pool = byTls.get(tlsKey);
    if (pool === undefined) {
      const settings =
        location.proxyPass!.target.kind === 'group' ? (entry.group as HttpUpstreamGroup) : NO_POOL;
      const stats = upstreamStats(upstream.name);
      pool = new GrpcPool(settings.keepaliveTimeoutMs, stats, tls, deps.log);
      byTls.set(tlsKey, pool);
      this.grpcPools.push(pool);
    }
    const keepalive = compileKeepalive(
      'grpc_socket_keepalive',
      location.proxySocketKeepalive,
      deps.keepaliveFailed,
    );
    pool.stats.socketKeepalive.add(keepalive.value);
    return {
      grpc: true,
      upstream,
      pool,
      conditions: new Set(location.proxyNextUpstream),
      keepalive,
      ping: {
        intervalMs: location.grpcPingIntervalMs,
        timeoutMs: location.grpcPingTimeoutMs,
        withoutCalls: location.grpcPingWithoutCalls,
      },
      stats: pool.stats,
      tls: tls !== undefined,
    };
  }

  /** `listeners[i]` is the bound socket for `addresses[i]`. */
  start(listeners: readonly Listener[]): void {
    for (const [i, f] of this.frontends.entries()) f.start([listeners[i]!]);
    liveHttp.add(this);
  }

  get liveCount(): number {
    let n = 0;
    for (const f of this.frontends) n += f.liveCount;
    return n;
  }

  /** Graceful stop announced: `health` answers 503, responses say `Connection: close` (HttpFrontend.announceDrain). */
  announceDrain(healthDown = true): void {
    for (const f of this.frontends) f.announceDrain(healthDown);
  }

  /**
   * Stops taking connections; cached upstream connections close, busy ones
   * are not reused. Idle keep-alive client connections are not cut: see
   * HttpFrontend.detach.
   */
  detach(closeIdle = false): void {
    for (const f of this.frontends) f.detach(closeIdle);
    for (const p of this.pools) p.close();
    for (const p of this.grpcPools) p.close();
    void this.drained().then(() => liveHttp.delete(this));
  }

  drained(): Promise<void> {
    return Promise.all(this.frontends.map((f) => f.drained())).then(() => {});
  }

  stop(): void {
    liveHttp.delete(this);
    for (const f of this.frontends) f.stop();
    for (const p of this.pools) p.close();
    for (const p of this.grpcPools) p.destroy();
  }
}
