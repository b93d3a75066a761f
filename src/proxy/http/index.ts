/**
 * The HTTP (L7) proxy of one configuration generation: a frontend per
 * listening address, the upstream groups with their keep-alive caches, and
 * the routes from locations to them. Built from the model, started on
 * listeners the runtime owns, drained and stopped as a unit.
 */
import { recordDefaults } from '../../config/directives.js';
import type { HttpBlock, HttpLocation, HttpUpstreamGroup, Listen } from '../../config/model.js';
import { compileKeepalive } from '../../keepalive/applier.js';
import { type LiveGroup, liveHttp } from '../../metrics/live.js';
import { upstreamStats } from '../../metrics/stats.js';
import { type Upstream, Upstreams } from '../../upstream/index.js';
import { type Generation, GenerationBuildError } from '../generation.js';
import type { Listener } from '../listener.js';
import { listenKey } from '../listener.js';
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
        at = { key, listen, servers: [vs] };
        byKey.set(key, at);
      } else {
        if (!at.servers.includes(vs)) at.servers.push(vs);
        if (at.listen.soKeepalive === undefined && listen.soKeepalive !== undefined) at.listen = listen;
      }
      if (listen.defaultServer && at.defaultServer === undefined) at.defaultServer = vs;
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
  private readonly routes = new Map<HttpLocation, Route>();
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
    const pools = new Map<Upstream, GroupPool>();
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
        let pool = pools.get(upstream);
        if (pool === undefined) {
          // proxy_pass to an address has no keep-alive cache, as in nginx.
          const settings = pass.target.kind === 'group' ? (entry.group as HttpUpstreamGroup) : NO_POOL;
          const stats = upstreamStats(upstream.name);
          stats.pool = { keepalive: settings.keepalive, keepaliveTimeoutMs: settings.keepaliveTimeoutMs };
          pool = new GroupPool(settings, stats);
          pools.set(upstream, pool);
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
    for (const address of addresses)
      this.frontends.push(
        new HttpFrontend(
          address.listen,
          new ServerTable(address.servers, address.defaultServer ?? address.servers[0]),
          this.routes,
          deps,
        ),
      );
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

  /**
   * Stops taking connections; cached upstream connections close, busy ones
   * are not reused. `closeIdle` false (a reload): see HttpFrontend.detach.
   */
  detach(closeIdle = true): void {
    for (const f of this.frontends) f.detach(closeIdle);
    for (const p of this.pools) p.close();
    void this.drained().then(() => liveHttp.delete(this));
  }

  drained(): Promise<void> {
    return Promise.all(this.frontends.map((f) => f.drained())).then(() => {});
  }

  stop(): void {
    liveHttp.delete(this);
    for (const f of this.frontends) f.stop();
    for (const p of this.pools) p.close();
  }
}
