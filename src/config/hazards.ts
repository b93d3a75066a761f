/**
 * Keepalive hazards: settings that are valid but break behind a middlebox
 * that forgets idle connections (DESIGN §6). Each is written once, here, over
 * the model. `check` runs them against `lb_idle_timeout` (as warnings;
 * `check --strict` fails on them); `doctor -c` runs the same ones against the
 * load balancers it is given (profiles with their expiry and pooling) and the
 * host's kernel defaults, and ranks them. So the two cannot disagree on the
 * same input with the same load balancer.
 */
import { probePeriod, recommend } from '../keepalive/recommend.js';
import type { KeepaliveSpec } from '../keepalive/spec.js';
import { formatDuration } from '../units/time.js';
import type { DiagnosticList, Position } from './diagnostics.js';
import type {
  Config,
  HttpLocation,
  HttpServer,
  HttpUpstreamGroup,
  Listen,
  ProxyTarget,
  StreamServer,
  UpstreamGroup,
  UpstreamServer,
} from './model.js';

/** Where model fields were set, so a hazard points at the directive to change. */
export class Origins {
  private readonly map = new WeakMap<object, Map<string, Position>>();

  set(obj: object, field: string, at: Position): void {
    const fields = this.map.get(obj) ?? new Map<string, Position>();
    fields.set(field, { file: at.file, line: at.line, col: at.col });
    this.map.set(obj, fields);
  }

  get(obj: object, field: string): Position | undefined {
    return this.map.get(obj)?.get(field);
  }
}

/** A middlebox on one leg, as the hazards need to know it. */
export interface Box {
  /** How messages name its timeout: `lb_idle_timeout 1m` (check), `aws-nlb's idle timeout 5m50s` (doctor). */
  label: string;
  idleMs: number;
  /** L4 (reset or drop at expiry): TCP keepalive probes keep its flow. Else an L7 proxy, whose idle timer counts data. */
  l4: boolean;
  /** It pools its connections to this server: the server's keepalive_timeout must outlast it (the 502 race). */
  pools: boolean;
  /** What an expired connection turns into, for `why`. */
  failure: string;
  /** The profile's name (`aws-nlb`), for dialects that word the hazard themselves (doctor --nginx). */
  name?: string;
}

/** The middleboxes of a server's two legs: in front (clients) and toward its upstreams. */
export interface Legs {
  front: readonly Box[];
  /** Empty: none known on that path. */
  upstream: readonly Box[];
}

/** The L4 box that forgets idle flows first: every keepalive must beat it. */
export function tightestL4(boxes: readonly Box[]): Box | undefined {
  let best: Box | undefined;
  for (const box of boxes) if (box.l4 && (!best || box.idleMs < best.idleMs)) best = box;
  return best;
}

/** The kernel keepalive values a socket inherits for the fields it does not set. */
export interface KernelKeepalive {
  idle: number;
  interval: number;
  count: number;
  /** `on a stock Linux host` or `of this host`. */
  where: string;
}

/** Linux's defaults: what `on` or an empty so_keepalive field gets on a stock host. */
export const STOCK_KERNEL: KernelKeepalive = {
  idle: 7200,
  interval: 75,
  count: 9,
  where: 'on a stock Linux host',
};

export type HazardCode =
  | 'keepalive-too-late'
  | 'keepalive-interval-too-long'
  | 'listener-without-keepalive'
  | 'upstream-without-keepalive'
  | 'keepalive-timeout-below-lb'
  | 'upstream-keepalive-timeout'
  | 'keepalive-http10'
  | 'upstream-pool-outlives-lb'
  | 'read-timeout-above-lb';

export interface Hazard {
  code: HazardCode;
  /** How much it matters; `check` reports every one above info as a warning. */
  severity: 'error' | 'warning' | 'info';
  at: Position;
  message: string;
  /** The failure it leads to, one sentence. */
  why: string;
  /** The line that fixes it. */
  fix: string;
  /**
   * The values the rule judged, so a dialect (doctor --nginx) words the
   * message and writes the fix in its own syntax from the same decision.
   */
  data: HazardData;
}

/** What a hazard was decided on: the middlebox, the records and the values. */
export interface HazardData {
  box?: Box;
  /** The keepalive's timing against the box (keepalive-too-late, keepalive-interval-too-long). */
  timing?: KeepaliveTiming;
  /** The listener it is about. */
  listen?: Listen;
  /** The stream server or location whose upstream leg, keep-alive timeout or read timeout it is about. */
  owner?: object;
  /** What waits on the connection, and how long: `proxy_read_timeout` 900 s. */
  waitMs?: number;
  waitName?: string;
  /** The location that waits longest, for a listener (its read timeout is the wait). */
  waitOwner?: object;
  group?: HttpUpstreamGroup;
  /** The upstream server whose own keep-alive timeout the pool outlives. */
  server?: UpstreamServer;
  /** keepalive_timeout, proxy_read_timeout or the server's keep-alive timeout, as judged. */
  valueMs?: number;
}

/** A place that takes keepalive values from the kernel, and which. */
export interface KernelDependent {
  at: Position;
  relies: ('idle' | 'interval' | 'count')[];
}

const fmt = (ms: number) => formatDuration(ms);

/** The so_keepalive value keepwire recommends for this idle timeout. */
function suggestedSpec(idleMs: number): string {
  const s = Math.floor(idleMs / 1000);
  return s >= 2 ? recommend(s).soKeepalive : '1s:1s:3';
}

/**
 * Whether every server a target reaches is on this host (loopback crosses no
 * middlebox). A `unix:` host comes from nginx's dialect (config/nginx-dialect.ts).
 */
export function isLocal(
  target: ProxyTarget,
  groups: ReadonlyMap<string, { servers: readonly { address: UpstreamServer['address'] }[] }> | undefined,
): boolean {
  const hosts =
    target.kind === 'address'
      ? [target.address]
      : (groups?.get(target.name)?.servers.map((s) => s.address) ?? []);
  const loopback = (h: string) =>
    h === 'localhost' || h.startsWith('127.') || h === '::1' || h.startsWith('unix:');
  return hosts.length > 0 && hosts.every((a) => loopback(a.host));
}

/** How a keepalive that is on fares against a middlebox that forgets a flow idle for `idleMs`. */
export interface KeepaliveTiming {
  /** Seconds, the spec's or the kernel's. */
  idle: number;
  interval: number;
  count: number;
  /** The fields taken from the kernel. */
  relies: KernelDependent['relies'];
  /** Seconds between probes on an idle connection: max(idle, interval). */
  period: number;
  /** Why the middlebox forgets the flow first: the first probe, or the gap after it; undefined: in time. */
  late?: 'idle' | 'interval';
}

/**
 * The one judgement of a keepalive's timing, for `check`, `doctor -c` and
 * `doctor --nginx`: the kernel re-arms its keepalive timer with the interval
 * after every probe, answered or not, so probes come every max(idle,
 * interval) and each must come before the middlebox's idle timeout.
 */
export function keepaliveTiming(
  spec: Omit<KeepaliveSpec, 'enable'>,
  idleMs: number,
  kernel: { idle: number; interval: number; count: number },
): KeepaliveTiming {
  const relies: KernelDependent['relies'] = [];
  if (spec.idle === undefined) relies.push('idle');
  if (spec.interval === undefined) relies.push('interval');
  if (spec.count === undefined) relies.push('count');
  const idle = spec.idle ?? kernel.idle;
  const interval = spec.interval ?? kernel.interval;
  const count = spec.count ?? kernel.count;
  const period = probePeriod({ idle, interval });
  const out: KeepaliveTiming = { idle, interval, count, relies, period };
  if (idle * 1000 >= idleMs) out.late = 'idle';
  else if (period * 1000 >= idleMs) out.late = 'interval';
  return out;
}

/**
 * Each keepalive hazard's rule, written once: the engine below applies them
 * to keepwire's model (check, doctor -c), doctor --nginx to nginx's blocks
 * (with its fixes in nginx's syntax); a keepalive's timing is
 * keepaliveTiming above.
 */
export const RULES = {
  /** A listener without keepalive facing an L4 box: an error when something waits as long as the box forgets, else advice. */
  listenerWithoutKeepalive: (waitMs: number, box: Box): 'error' | 'info' =>
    waitMs >= box.idleMs ? 'error' : 'info',
  /** An upstream leg without keepalive loses a connection that waits as long as the box forgets. */
  upstreamWaitsTooLong: (waitMs: number, box: Box): boolean => waitMs >= box.idleMs,
  /** A pool without TCP keepalive keeps idle connections at least as long as the box remembers them. */
  poolOutlivesBox: (pool: { keepalive: number; keepaliveTimeoutMs: number }, box: Box): boolean =>
    pool.keepalive > 0 && pool.keepaliveTimeoutMs >= box.idleMs,
  /** The 502 race: a box that pools its connections to the server keeps them at least as long as the server does. */
  keepaliveRace: (keepaliveTimeoutMs: number, box: Box): boolean =>
    box.pools && keepaliveTimeoutMs > 0 && keepaliveTimeoutMs <= box.idleMs,
  /** An L7 box counts data, not TCP keepalive: a response slower than its idle timeout never arrives. */
  responseOutlivesL7: (readTimeoutMs: number, box: Box): boolean => !box.l4 && readTimeoutMs > box.idleMs,
};

class Engine {
  readonly hazards: Hazard[] = [];
  readonly dependents: KernelDependent[] = [];

  constructor(
    private readonly origins: Origins,
    private readonly kernel: KernelKeepalive,
  ) {}

  private add(h: Hazard): void {
    this.hazards.push(h);
  }

  /** A keepalive spec that is on, against a box: the first probe and every max(idle, interval). */
  private spec(
    spec: KeepaliveSpec,
    box: Box,
    at: Position,
    what: string,
    fixFor: (spec: string) => string,
    data: HazardData,
  ) {
    const t = keepaliveTiming(spec, box.idleMs, this.kernel);
    if (t.relies.length > 0) this.dependents.push({ at, relies: t.relies });
    const fix = fixFor(suggestedSpec(box.idleMs));
    if (t.late === 'idle') {
      this.add({
        code: 'keepalive-too-late',
        severity: 'error',
        at,
        message:
          spec.idle === undefined
            ? `${what} uses the system keepalive idle (${t.idle}s ${this.kernel.where}), not below ${box.label}: the first probe comes after the load balancer has forgotten the connection`
            : `${what} keepalive idle ${spec.idle}s is not below ${box.label}: the first probe comes after the load balancer has forgotten the connection`,
        why: `an idle connection is forgotten before its first probe, and ${box.failure}.`,
        fix,
        data: { ...data, box, timing: t },
      });
      return;
    }
    if (t.late === 'interval') {
      this.add({
        code: 'keepalive-interval-too-long',
        severity: 'error',
        at,
        message: `${what} probe interval ${t.interval}s${spec.interval === undefined ? ` (the system default ${this.kernel.where})` : ''} is not below ${box.label}: after the first probe the kernel waits the interval before the next, so an idle connection is silent for ${t.interval}s and the load balancer forgets it`,
        why: `an idle connection outlives the first probe but not the second, and ${box.failure}.`,
        fix,
        data: { ...data, box, timing: t },
      });
    }
  }

  /** A listener against the box in front, when it is one TCP keepalive can hold (L4). */
  listener(
    listen: Listen,
    front: readonly Box[],
    waitMs: number,
    waitName: string,
    waitOwner: object | undefined,
  ): void {
    const box = tightestL4(front);
    if (!box) return;
    const where = this.origins.get(listen, 'soKeepalive') ?? listen.source;
    const fixFor = (spec: string) => `listen ${listen.address.text} so_keepalive=${spec};`;
    const data: HazardData = { box, listen, waitMs, waitName, ...(waitOwner ? { waitOwner } : {}) };
    if (listen.soKeepalive?.enable) {
      this.spec(listen.soKeepalive, box, where, 'so_keepalive', fixFor, data);
      return;
    }
    const long = RULES.listenerWithoutKeepalive(waitMs, box) === 'error';
    this.add({
      code: 'listener-without-keepalive',
      severity: long ? 'error' : 'info',
      at: listen.source,
      message: long
        ? `listen ${listen.address.text} has no so_keepalive while ${waitName} ${fmt(waitMs)} exceeds ${box.label}: a connection idle that long is dropped by the load balancer without either side noticing`
        : `listen ${listen.address.text} has no so_keepalive, facing ${box.label}`,
      why: long
        ? `a request that keeps the client connection silent for ${fmt(box.idleMs)} is lost: ${box.failure}.`
        : `nothing here waits that long today (longest ${waitName} ${fmt(waitMs)}), but a dead client or a connection the load balancer forgot is only noticed at the proxy's own timeouts.`,
      fix: fixFor(suggestedSpec(box.idleMs)),
      data,
    });
  }

  /** The upstream leg of a stream server or a location. */
  upstreamLeg(
    owner: object,
    spec: KeepaliveSpec,
    local: boolean,
    boxes: readonly Box[],
    waitMs: number,
    waitName: string,
    group: HttpUpstreamGroup | undefined,
    fallback: Position,
  ): void {
    // Loopback traffic crosses no middlebox.
    if (local) return;
    // The leg's own keepalive setting, else the proxy_pass that opens the leg (the block to add it
    // to; the message names the timeout that waits): doctor --nginx points at the same places.
    const specAt =
      this.origins.get(owner, 'proxySocketKeepalive') ?? this.origins.get(owner, 'proxyPass') ?? fallback;
    const socketKeepalive = spelled(owner, 'proxy_socket_keepalive');
    const fixFor = (s: string) => `${socketKeepalive} ${s};`;
    if (boxes.length === 0) {
      if (!spec.enable) {
        this.add({
          code: 'upstream-without-keepalive',
          severity: 'info',
          at: specAt,
          message: `no ${socketKeepalive} toward an upstream that is not on this host; no middlebox on that path was given`,
          why: 'if a firewall, NAT or load balancer sits on that path, an upstream connection idle longer than its timeout is forgotten.',
          fix: `${socketKeepalive} on;`,
          data: { owner, waitMs, waitName },
        });
      }
      return;
    }
    const box = tightestL4(boxes);
    if (!box) return;
    if (spec.enable) {
      this.spec(spec, box, specAt, socketKeepalive, fixFor, { owner, waitMs, waitName });
      return;
    }
    if (RULES.upstreamWaitsTooLong(waitMs, box)) {
      this.add({
        code: 'upstream-without-keepalive',
        severity: 'error',
        at: specAt,
        message: `${socketKeepalive} is off while ${waitName} ${fmt(waitMs)} exceeds ${box.label}: an upstream connection waiting that long can be forgotten by a load balancer on the way`,
        why: `a request that keeps the upstream silent that long loses its upstream connection: ${box.failure}.`,
        fix: fixFor(suggestedSpec(box.idleMs)),
        data: { box, owner, waitMs, waitName },
      });
    }
    if (group && RULES.poolOutlivesBox(group, box)) {
      this.add({
        code: 'upstream-pool-outlives-lb',
        severity: 'error',
        at:
          this.origins.get(group, 'keepaliveTimeoutMs') ??
          this.origins.get(group, 'keepalive') ??
          group.source,
        message: `upstream "${group.name}" keeps idle connections ${fmt(group.keepaliveTimeoutMs)}, not less than ${box.label}, without TCP keepalive`,
        why: `a pooled connection the load balancer already forgot is reused, and ${box.failure}; only an idempotent request is repeated on a fresh connection.`,
        fix: `keepalive_timeout ${recommend(Math.max(2, Math.floor(box.idleMs / 1000))).clientPoolIdleTimeout}s;`,
        data: { box, owner, group, valueMs: group.keepaliveTimeoutMs },
      });
    }
  }

  /** keepalive_timeout against a box in front that pools its connections to this server. */
  serverKeepalive(server: HttpServer, front: readonly Box[]): void {
    for (const box of front) if (box.pools) this.serverKeepaliveAgainst(server, box);
  }

  private serverKeepaliveAgainst(server: HttpServer, box: Box): void {
    // Locations inherit the server's value: each directive is reported once.
    const reported = new Set<string>();
    for (const owner of [server, ...server.locations]) {
      const ms = owner.keepaliveTimeoutMs;
      if (!RULES.keepaliveRace(ms, box)) continue;
      const at = this.origins.get(owner, 'keepaliveTimeoutMs') ?? server.source;
      const key = `${at.file}:${at.line}:${at.col}`;
      if (reported.has(key)) continue;
      reported.add(key);
      this.add({
        code: 'keepalive-timeout-below-lb',
        severity: 'error',
        at,
        message: `keepalive_timeout ${fmt(ms)} is not above ${box.label}: the load balancer may reuse a connection this server is closing, and the request fails (502)`,
        why: 'the load balancer reuses a pooled connection the server is closing, and the request fails with a 502.',
        fix: `keepalive_timeout ${recommend(Math.max(2, Math.floor(box.idleMs / 1000))).httpServerKeepaliveTimeout}s;`,
        data: { box, owner, valueMs: ms },
      });
    }
  }

  /**
   * An L7 proxy in front counts data: a response slower than its idle
   * timeout fails whatever TCP keepalive does, and so does a long-poll, an
   * SSE stream or a WebSocket quiet that long. A WebSocket location whose
   * `websocket_heartbeat` beats the box's timer is held open by keepwire's
   * Pongs (RFC 6455 §5.5.3), which are data to the box.
   */
  longResponse(server: HttpServer, front: readonly Box[]): void {
    for (const box of front) {
      if (box.l4) continue;
      for (const location of server.locations) {
        if (!location.proxyPass || !RULES.responseOutlivesL7(location.proxyReadTimeoutMs, box)) continue;
        const heartbeat = location.websocketHeartbeat;
        if (heartbeat !== null && heartbeat.intervalMs < box.idleMs && heartbeat.side !== 'upstream')
          continue;
        const beatS = Math.max(1, Math.floor(box.idleMs / 2000));
        const at =
          this.origins.get(location, 'proxyReadTimeoutMs') ??
          this.origins.get(location, 'proxyPass') ??
          location.source;
        if (heartbeat !== null) {
          this.add({
            code: 'read-timeout-above-lb',
            severity: 'warning',
            at: this.origins.get(location, 'websocketHeartbeat') ?? at,
            message: `websocket_heartbeat ${fmt(heartbeat.intervalMs)} ${heartbeat.side} does not keep a quiet WebSocket open through ${box.label}: ${heartbeat.side === 'upstream' ? 'no Pong goes toward the client side, where the load balancer is' : 'the first Pong comes after the load balancer has closed the connection'}`,
            why: `a WebSocket quiet for ${fmt(box.idleMs)} is closed by the load balancer: ${box.failure} (TCP keepalive does not count as data for an L7 proxy).`,
            fix: `websocket_heartbeat ${beatS}s;`,
            data: { box, owner: location, valueMs: location.proxyReadTimeoutMs },
          });
          continue;
        }
        this.add({
          code: 'read-timeout-above-lb',
          severity: 'warning',
          at,
          message: `${spelled(location, 'proxy_read_timeout')} ${fmt(location.proxyReadTimeoutMs)} lets a response take longer than ${box.label}: a slow response, long-poll, SSE stream or WebSocket quiet that long is closed by the load balancer whatever TCP keepalive does`,
          why: `a response slower than ${fmt(box.idleMs)} never reaches the client: ${box.failure} (TCP keepalive does not count as data for an L7 proxy).`,
          fix: `websocket_heartbeat ${beatS}s; for WebSockets, an application heartbeat more often than every ${fmt(box.idleMs)} for SSE (a comment line) and long-polls (answer before it), or ${spelled(location, 'proxy_read_timeout')} ${Math.max(1, Math.floor(box.idleMs / 1000) - 1)}s;`,
          data: { box, owner: location, valueMs: location.proxyReadTimeoutMs },
        });
      }
    }
  }

  /** Pool settings that need no load balancer: the server's own timeout, and HTTP/1.0. */
  pools(config: Config): void {
    const http = config.http;
    if (!http) return;
    // The keep-alive timeout of an upstream server is known when it says so
    // (`keepalive_timeout=` on its line) or when it is one of our own servers.
    const ownKeepalive = new Map<string, number>();
    for (const server of http.servers) {
      for (const l of server.listens)
        ownKeepalive.set(`${l.address.host}:${l.address.port}`, server.keepaliveTimeoutMs);
    }
    for (const group of http.upstreams.values()) {
      for (const s of group.servers) {
        const peer = s.keepaliveTimeoutMs ?? ownKeepalive.get(`${s.address.host}:${s.address.port}`);
        if (peer === undefined || peer === 0 || group.keepalive === 0) continue;
        if (group.keepaliveTimeoutMs >= peer) {
          this.add({
            code: 'upstream-keepalive-timeout',
            severity: 'warning',
            at:
              this.origins.get(group, 'keepaliveTimeoutMs') ??
              this.origins.get(group, 'keepalive') ??
              group.source,
            message: `upstream "${group.name}" keeps idle connections ${fmt(group.keepaliveTimeoutMs)}, not less than server ${s.address.text}'s own keep-alive timeout ${fmt(peer)}: the server closes them first, and a request sent at that moment fails`,
            why: 'the server closes an idle connection the pool is about to reuse; a request sent at that moment fails unless it can be repeated.',
            fix: `keepalive_timeout ${fmt(Math.max(1000, peer - 1000))}; (below the server's ${fmt(peer)})`,
            data: { group, server: s, valueMs: peer },
          });
        }
      }
    }
    for (const server of http.servers) {
      for (const location of server.locations) {
        const target = location.proxyPass?.target;
        if (target?.kind !== 'group' || location.proxyHttpVersion !== '1.0') continue;
        const group = http.upstreams.get(target.name);
        if (!group || group.keepalive === 0) continue;
        this.add({
          code: 'keepalive-http10',
          severity: 'warning',
          at:
            this.origins.get(location, 'proxyHttpVersion') ??
            this.origins.get(location, 'proxyPass') ??
            location.source,
          message: `upstream "${group.name}" pools connections (keepalive ${group.keepalive}) but location "${location.prefix}" speaks HTTP/1.0 to it: every request closes its connection and the pool stays empty`,
          why: 'every upstream request closes its connection, so the pool stays empty and each request pays a new TCP handshake.',
          fix: 'proxy_http_version 1.1;',
          data: { owner: location, group },
        });
      }
    }
  }
}

function streamServerHazards(
  engine: Engine,
  server: StreamServer,
  legs: Legs,
  groups: ReadonlyMap<string, UpstreamGroup> | undefined,
): void {
  for (const listen of server.listens)
    engine.listener(listen, legs.front, server.proxyTimeoutMs, 'proxy_timeout', server);
  engine.upstreamLeg(
    server,
    server.proxySocketKeepalive,
    isLocal(server.proxyPass, groups),
    legs.upstream,
    server.proxyTimeoutMs,
    'proxy_timeout',
    undefined,
    server.source,
  );
}

const socketKey = (l: Listen) => `${l.address.host.toLowerCase()}:${l.address.port}`;

const SOCKETS = new WeakMap<Config, Set<string>>();

/** The http addresses some `listen` sets so_keepalive on. */
function keepaliveSockets(config: Config): Set<string> {
  let keys = SOCKETS.get(config);
  if (!keys) {
    keys = new Set();
    for (const server of config.http?.servers ?? [])
      for (const l of server.listens) if (l.soKeepalive) keys.add(socketKey(l));
    SOCKETS.set(config, keys);
  }
  return keys;
}

/**
 * A proxy_* directive's name as a location spells it: `grpc_*` in a
 * `grpc_pass` location (nginx's grpc module reads its own twins there),
 * `proxy_*` everywhere else.
 */
function spelled(owner: object | undefined, proxyName: string): string {
  const scheme = (owner as Partial<HttpLocation> | undefined)?.proxyPass?.scheme;
  return scheme === 'grpc' || scheme === 'grpcs' ? proxyName.replace(/^proxy_/, 'grpc_') : proxyName;
}

function httpServerHazards(engine: Engine, config: Config, server: HttpServer, legs: Legs): void {
  // Only proxying locations wait on an upstream; `return` answers at once.
  let longest: HttpLocation | undefined;
  for (const l of server.locations)
    if (l.proxyPass && (!longest || l.proxyReadTimeoutMs > longest.proxyReadTimeoutMs)) longest = l;
  const longestRead = longest?.proxyReadTimeoutMs ?? 0;
  for (const listen of server.listens) {
    // Socket options belong to the listening socket, which every http server on that address
    // shares (as nginx): `listen 80 so_keepalive=...` in one server covers a plain `listen 80`
    // in another, and that one is judged on its own line.
    if (!listen.soKeepalive && keepaliveSockets(config).has(socketKey(listen))) continue;
    engine.listener(listen, legs.front, longestRead, spelled(longest, 'proxy_read_timeout'), longest);
  }
  engine.serverKeepalive(server, legs.front);
  engine.longResponse(server, legs.front);
  for (const location of server.locations) {
    const target = location.proxyPass?.target;
    if (!target) continue;
    const group = target.kind === 'group' ? config.http?.upstreams.get(target.name) : undefined;
    engine.upstreamLeg(
      location,
      location.proxySocketKeepalive,
      isLocal(target, config.http?.upstreams),
      legs.upstream,
      location.proxyReadTimeoutMs,
      spelled(location, 'proxy_read_timeout'),
      group,
      location.source,
    );
  }
}

/**
 * Every keepalive hazard of `config`, each server checked against the
 * middleboxes `legsOf` gives it, with the places that rely on the kernel's
 * keepalive defaults.
 */
export function keepaliveHazards(
  config: Config,
  origins: Origins,
  legsOf: (server: StreamServer | HttpServer) => Legs,
  kernel: KernelKeepalive = STOCK_KERNEL,
): { hazards: Hazard[]; dependents: KernelDependent[] } {
  const engine = new Engine(origins, kernel);
  for (const server of config.stream?.servers ?? [])
    streamServerHazards(engine, server, legsOf(server), config.stream?.upstreams);
  for (const server of config.http?.servers ?? []) httpServerHazards(engine, config, server, legsOf(server));
  engine.pools(config);
  return { hazards: engine.hazards, dependents: engine.dependents };
}

/**
 * `check`'s view: `lb_idle_timeout` names a load balancer in front of or
 * behind the server, of the kind `lb_kind` says (default l4), so both legs
 * are checked against it and the front one as pooling too (the stricter
 * reading). An l7 box holds no TCP keepalive hazard (probes never cross
 * it); its hazards are the ones of data: long reads and quiet tunnels.
 */
export function lbIdleLegs(server: StreamServer | HttpServer): Legs {
  const ms = server.lbIdleTimeoutMs;
  if (ms === undefined) return { front: [], upstream: [] };
  const l4 = server.lbKind !== 'l7';
  const box: Box = {
    label: l4 ? `lb_idle_timeout ${fmt(ms)}` : `lb_idle_timeout ${fmt(ms)} (lb_kind l7)`,
    idleMs: ms,
    l4,
    pools: true,
    failure: l4 ? 'the next packet is reset or lost' : 'the load balancer closes both of its connections',
  };
  return { front: [box], upstream: [box] };
}

export function checkHazards(config: Config, origins: Origins, diags: DiagnosticList): void {
  const { hazards } = keepaliveHazards(config, origins, lbIdleLegs);
  for (const h of hazards) {
    // Info (nothing waits that long today, or no middlebox known) is doctor's, not check's.
    if (h.severity === 'info') continue;
    diags.warning(`hazard-${h.code}`, h.at, h.message, h.fix);
  }
}
