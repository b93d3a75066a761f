/**
 * The live proxies a page reads its gauges and connection table from: each
 * HTTP generation and stream proxy adds itself when it starts and leaves when
 * stopped or drained after a reload, so a page sees what serves now and what
 * still drains.
 */
import type { HttpLocation } from '../config/model.js';
import type { HttpFrontend } from '../proxy/http/server.js';
import type { GroupPool } from '../proxy/http/transport.js';
import type { StreamProxy } from '../proxy/stream.js';
import type { Upstream } from '../upstream/index.js';
import type { UpstreamStats } from './stats.js';

/** An upstream group of an HTTP generation with its keep-alive cache. */
export interface LiveGroup {
  upstream: Upstream;
  pool: GroupPool;
  stats: UpstreamStats;
}

export interface LiveHttp {
  readonly frontends: readonly HttpFrontend[];
  readonly groups: readonly LiveGroup[];
  /** The `status` locations of the generation (their status_connections bound the table). */
  readonly statusLocations: readonly HttpLocation[];
  /** The least lb_idle_timeout of the block's servers: what upstream connections are drawn against. */
  readonly lbIdleTimeoutMs: number | undefined;
}

export const liveHttp = new Set<LiveHttp>();
export const liveStreams = new Set<StreamProxy>();
