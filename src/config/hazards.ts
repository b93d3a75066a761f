/**
 * Hazards: settings that are valid but break behind a load balancer that
 * forgets idle connections (DESIGN §6). They are warnings; `check --strict`
 * turns them into a failure.
 */
import { probePeriod, recommend } from '../keepalive/recommend.js';
import type { KeepaliveSpec } from '../keepalive/spec.js';
import { formatDuration } from '../units/time.js';
import type { DiagnosticList, Position } from './diagnostics.js';
import type { Config, HttpServer, Listen } from './model.js';

/** Where model fields were set, so a warning points at the directive to change. */
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

/** Linux's defaults: what `on` or an empty so_keepalive field gets on a stock host. */
const KERNEL_DEFAULT_IDLE_S = 7200;
const KERNEL_DEFAULT_INTERVAL_S = 75;

const fmt = (ms: number) => formatDuration(ms);

/** The so_keepalive value keepwire recommends for this LB idle timeout. */
function suggestedSpec(lbMs: number): string {
  const lbS = Math.floor(lbMs / 1000);
  return lbS >= 2 ? recommend(lbS).soKeepalive : '1s:1s:3';
}

function checkSpec(
  spec: KeepaliveSpec,
  lbMs: number,
  at: Position,
  what: string,
  diags: DiagnosticList,
): void {
  if (!spec.enable) return;
  const idleS = spec.idle ?? KERNEL_DEFAULT_IDLE_S;
  const intervalS = spec.interval ?? KERNEL_DEFAULT_INTERVAL_S;
  const hint = `set the idle and the interval below the load balancer's timeout with a margin, e.g. ${suggestedSpec(lbMs)}`;
  if (idleS * 1000 >= lbMs) {
    diags.warning(
      'hazard-keepalive-too-late',
      at,
      spec.idle === undefined
        ? `${what} uses the system keepalive idle (${KERNEL_DEFAULT_IDLE_S}s on a stock Linux host), not below lb_idle_timeout ${fmt(lbMs)}: the first probe comes after the load balancer has forgotten the connection`
        : `${what} keepalive idle ${spec.idle}s is not below lb_idle_timeout ${fmt(lbMs)}: the first probe comes after the load balancer has forgotten the connection`,
      hint,
    );
    return;
  }
  // The kernel re-arms its keepalive timer with the interval after every
  // probe, answered or not: probes come every max(idle, interval).
  if (probePeriod({ idle: idleS, interval: intervalS }) * 1000 >= lbMs) {
    diags.warning(
      'hazard-keepalive-interval-too-long',
      at,
      `${what} probe interval ${intervalS}s${spec.interval === undefined ? ' (the system default on a stock Linux host)' : ''} is not below lb_idle_timeout ${fmt(lbMs)}: after the first probe the kernel waits the interval before the next, so an idle connection is silent for ${intervalS}s and the load balancer forgets it`,
      hint,
    );
  }
}

function listenerHazards(
  listen: Listen,
  lbMs: number,
  longestWaitMs: number,
  waitName: string,
  origins: Origins,
  diags: DiagnosticList,
): void {
  if (listen.soKeepalive?.enable) {
    checkSpec(
      listen.soKeepalive,
      lbMs,
      origins.get(listen, 'soKeepalive') ?? listen.source,
      'so_keepalive',
      diags,
    );
    return;
  }
  if (longestWaitMs > lbMs) {
    diags.warning(
      'hazard-listener-without-keepalive',
      listen.source,
      `listen ${listen.address.text} has no so_keepalive while ${waitName} ${fmt(longestWaitMs)} exceeds lb_idle_timeout ${fmt(lbMs)}: a connection idle that long is dropped by the load balancer without either side noticing`,
      `add so_keepalive with an idle and interval below ${fmt(lbMs)}, e.g. listen ${listen.address.text} so_keepalive=${suggestedSpec(lbMs)};`,
    );
  }
}

function upstreamLegHazard(
  spec: KeepaliveSpec,
  lbMs: number,
  waitMs: number,
  waitName: string,
  at: Position,
  diags: DiagnosticList,
): void {
  if (spec.enable) {
    checkSpec(spec, lbMs, at, 'proxy_socket_keepalive', diags);
    return;
  }
  if (waitMs > lbMs) {
    diags.warning(
      'hazard-upstream-without-keepalive',
      at,
      `proxy_socket_keepalive is off while ${waitName} ${fmt(waitMs)} exceeds lb_idle_timeout ${fmt(lbMs)}: an upstream connection waiting that long can be forgotten by a load balancer on the way`,
      `proxy_socket_keepalive ${Math.max(1, Math.floor(lbMs / 2000))}s:10s:6;`,
    );
  }
}

function httpServerHazards(server: HttpServer, lbMs: number, origins: Origins, diags: DiagnosticList): void {
  const longestRead = Math.max(0, ...server.locations.map((l) => l.proxyReadTimeoutMs));
  for (const listen of server.listens) {
    listenerHazards(listen, lbMs, longestRead, 'proxy_read_timeout', origins, diags);
  }
  // A location's keepalive_timeout applies after the requests routed to it;
  // locations inherit the server's, so each directive is reported once.
  const reported = new Set<string>();
  for (const owner of [server, ...server.locations]) {
    const ms = owner.keepaliveTimeoutMs;
    if (ms <= 0 || ms > lbMs) continue;
    const at = origins.get(owner, 'keepaliveTimeoutMs') ?? server.source;
    const key = `${at.file}:${at.line}:${at.col}`;
    if (reported.has(key)) continue;
    reported.add(key);
    diags.warning(
      'hazard-keepalive-timeout-below-lb',
      at,
      `keepalive_timeout ${fmt(ms)} is not above lb_idle_timeout ${fmt(lbMs)}: the load balancer may reuse a connection this server is closing, and the request fails (502)`,
      `make the server's keep-alive outlast the load balancer's, e.g. keepalive_timeout ${fmt(lbMs + 15_000)};`,
    );
  }
  for (const location of server.locations) {
    if (!location.proxyPass) continue;
    upstreamLegHazard(
      location.proxySocketKeepalive,
      lbMs,
      location.proxyReadTimeoutMs,
      'proxy_read_timeout',
      origins.get(location, 'proxySocketKeepalive') ??
        origins.get(location, 'proxyReadTimeoutMs') ??
        location.source,
      diags,
    );
  }
}

export function checkHazards(config: Config, origins: Origins, diags: DiagnosticList): void {
  for (const server of config.stream?.servers ?? []) {
    const lb = server.lbIdleTimeoutMs;
    if (lb === undefined) continue;
    for (const listen of server.listens) {
      listenerHazards(listen, lb, server.proxyTimeoutMs, 'proxy_timeout', origins, diags);
    }
    upstreamLegHazard(
      server.proxySocketKeepalive,
      lb,
      server.proxyTimeoutMs,
      'proxy_timeout',
      origins.get(server, 'proxySocketKeepalive') ?? origins.get(server, 'proxyTimeoutMs') ?? server.source,
      diags,
    );
  }
  const http = config.http;
  if (!http) return;
  for (const server of http.servers) {
    if (server.lbIdleTimeoutMs !== undefined)
      httpServerHazards(server, server.lbIdleTimeoutMs, origins, diags);
  }

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
        diags.warning(
          'hazard-upstream-keepalive-timeout',
          origins.get(group, 'keepaliveTimeoutMs') ?? origins.get(group, 'keepalive') ?? group.source,
          `upstream "${group.name}" keeps idle connections ${fmt(group.keepaliveTimeoutMs)}, not less than server ${s.address.text}'s own keep-alive timeout ${fmt(peer)}: the server closes them first, and a request sent at that moment fails`,
          `keepalive_timeout ${fmt(Math.max(1000, peer - 1000))}; (below the server's ${fmt(peer)})`,
        );
      }
    }
  }
  for (const server of http.servers) {
    for (const location of server.locations) {
      const target = location.proxyPass?.target;
      if (target?.kind !== 'group' || location.proxyHttpVersion !== '1.0') continue;
      const group = http.upstreams.get(target.name);
      if (!group || group.keepalive === 0) continue;
      diags.warning(
        'hazard-keepalive-http10',
        origins.get(location, 'proxyHttpVersion') ?? origins.get(location, 'proxyPass') ?? location.source,
        `upstream "${group.name}" pools connections (keepalive ${group.keepalive}) but location "${location.prefix}" speaks HTTP/1.0 to it: every request closes its connection and the pool stays empty`,
        'add proxy_http_version 1.1; to this location (and proxy_set_header Connection "";)',
      );
    }
  }
}
