/**
 * The proxy's counters, kept as plain numbers on one object per bounded
 * label value (a listening address, an upstream group), made once when a
 * generation is built and kept across reloads (keyed by the address text or
 * the group name), so a reload never resets a Prometheus counter. The hot
 * path does `stats.requests++`-style increments on objects it already holds:
 * no label strings are built per request, no map is searched.
 *
 * Gauges (connections by state, pool sizes, upstream health) are not kept
 * here: they are read from the live objects when a page asks (`collect.ts`).
 */

/** Upper bounds (seconds) of the request-duration histogram. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/**
 * Upper bounds (seconds) of the idle-before-reuse histograms: up to the
 * idle timeouts of the usual load balancers (AWS ALB 60 s, Cloudflare 100 s,
 * GCP 600 s, NLB 350 s) so an operator sees reuse approaching them.
 */
export const IDLE_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 900];

/** Counts observations per bucket (non-cumulative; cumulated when exposed), with their sum. */
export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** `value` in seconds. */
  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** One counter per label value of a bounded set (reasons, status classes), as a plain record. */
export type ByLabel = Record<string, number>;

function bump(map: ByLabel, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/** Counters of one listening address (stream or http). */
export class ListenerStats {
  /** Connections accepted, including those refused over worker_connections (nginx `accepts`). */
  accepted = 0;
  /** Connections accepted and served (nginx `handled`). */
  handled = 0;
  /** HTTP requests started (nginx `requests`). */
  requests = 0;
  /** Requests ended, by status class ("2xx", ... ; "none" when no status was sent). */
  readonly byClass: ByLabel = {};
  /** Requests ended, by the access log's `reason`. */
  readonly requestReasons: ByLabel = {};
  readonly duration = new Histogram(DURATION_BUCKETS);
  /** Time a keep-alive client connection sat idle before its next request. */
  readonly idleBeforeReuse = new Histogram(IDLE_BUCKETS);
  /** Client connections closed by keepalive_timeout (idle between requests). */
  clientIdleTimeouts = 0;
  /** Stream sessions ended, by the session log's `reason`. */
  readonly sessionReasons: ByLabel = {};
  /** Upgrade tunnels (WebSocket) closed by proxy_read_timeout with no byte either way. */
  tunnelIdleTimeouts = 0;
  /** Unsolicited Pongs sent into WebSocket tunnels (websocket_heartbeat). */
  websocketHeartbeats = 0;
  /** so_keepalive as configured (`off`, `on`, `30s:10s:3`), for the info metric. */
  soKeepalive = 'off';

  constructor(
    readonly listen: string,
    readonly kind: 'http' | 'stream',
  ) {}

  requestEnded(status: number, reason: string, ms: number): void {
    bump(this.byClass, status >= 100 && status < 600 ? STATUS_CLASSES[(status / 100) | 0]! : 'none');
    bump(this.requestReasons, reason);
    this.duration.observe(ms / 1000);
  }

  sessionEnded(reason: string): void {
    bump(this.sessionReasons, reason);
  }
}

const STATUS_CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** Counters of one upstream group (an `upstream` block or a bare `proxy_pass` address). */
export class UpstreamStats {
  /** Requests sent on a fresh connection / on a cached keep-alive connection. */
  connectionsNew = 0;
  connectionsReused = 0;
  /** Time a cached connection sat idle before it was reused. */
  readonly idleBeforeReuse = new Histogram(IDLE_BUCKETS);
  /** Retries: `stale_connection` (a reused connection failed before any byte) and `next_upstream`. */
  readonly retries: ByLabel = {};
  /** Failed attempts by the access log's reason (connect_failed, upstream_reset, ...). */
  readonly failures: ByLabel = {};
  /** Cached connections closed by the group's keepalive_timeout (or the upstream's hint). */
  idleTimeouts = 0;
  /** proxy_socket_keepalive values of the locations using the group. */
  readonly socketKeepalive = new Set<string>();
  /** The group's keep-alive cache settings, for the info metric. */
  pool: { keepalive: number; keepaliveTimeoutMs: number } | undefined;

  constructor(readonly upstream: string) {}

  retried(kind: string): void {
    bump(this.retries, kind);
  }

  failed(reason: string): void {
    bump(this.failures, reason);
  }
}

const listeners = new Map<string, ListenerStats>();
const upstreams = new Map<string, UpstreamStats>();

/** The counters of a listening address, made on first use and kept for the process's life. */
export function listenerStats(listen: string, kind: 'http' | 'stream'): ListenerStats {
  const key = `${kind} ${listen}`;
  let s = listeners.get(key);
  if (s === undefined) {
    s = new ListenerStats(listen, kind);
    listeners.set(key, s);
  }
  return s;
}

export function upstreamStats(name: string): UpstreamStats {
  let s = upstreams.get(name);
  if (s === undefined) {
    s = new UpstreamStats(name);
    upstreams.set(name, s);
  }
  return s;
}

export function allListenerStats(): Iterable<ListenerStats> {
  return listeners.values();
}

export function allUpstreamStats(): Iterable<UpstreamStats> {
  return upstreams.values();
}

/** A notable event for the status page: kept in a bounded ring, newest last. */
export interface NotableEvent {
  at: number;
  kind:
    | 'stale_retry'
    | 'next_upstream'
    | 'upstream_failure'
    | 'client_idle_timeout'
    | 'upstream_idle_timeout'
    | 'tunnel_idle_timeout'
    | 'session_end';
  /** The listening address or upstream group. */
  where: string;
  detail: string;
}

export const EVENT_RING = 100;
const ring: NotableEvent[] = [];
let ringAt = 0;

export function noteEvent(kind: NotableEvent['kind'], where: string, detail: string): void {
  const e: NotableEvent = { at: Date.now(), kind, where, detail };
  if (ring.length < EVENT_RING) ring.push(e);
  else {
    ring[ringAt] = e;
    ringAt = (ringAt + 1) % EVENT_RING;
  }
}

/** The events in the ring, oldest first. */
export function recentEvents(): NotableEvent[] {
  return ring.length < EVENT_RING ? [...ring] : [...ring.slice(ringAt), ...ring.slice(0, ringAt)];
}
