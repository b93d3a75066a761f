/**
 * `keepwire doctor --envoy FILE`: an Envoy bootstrap (YAML or JSON, v3 API)
 * read into the doctor's model of the timeout chain and judged by the
 * hazard rules of config/hazards.ts, with findings at the key's line and
 * fixes in Envoy's own fields.
 *
 * What is read (defaults from Envoy's timeouts FAQ and API reference):
 * - listeners: `socket_options` SO_KEEPALIVE (level 1, name 9) and
 *   TCP_KEEPIDLE/KEEPINTVL/KEEPCNT (level 6, names 4/5/6) toward clients;
 *   the HTTP connection manager's `common_http_protocol_options.idle_timeout`
 *   (default 1 h), `stream_idle_timeout` (default 5 min), HTTP/2
 *   `connection_keepalive` (PINGs are packets: with `codec_type: HTTP2` and
 *   an interval below the box's idle they hold the flow, no TCP keepalive
 *   needed), the routes' `timeout` (default 15 s, 0 = none);
 *   `tcp_proxy`'s `idle_timeout` (default 1 h);
 * - clusters: `upstream_connection_options.tcp_keepalive`
 *   (keepalive_time/interval/probes, unset = the kernel's), the upstream
 *   `common_http_protocol_options.idle_timeout` (default 1 h) in
 *   `typed_extension_protocol_options` (or the cluster's own, older form),
 *   HTTP/2 `connection_keepalive` under `explicit_http_config` (PINGs in time
 *   keep the pooled connections).
 */
import { readFileSync } from 'node:fs';
import { type Box, keepaliveTiming, RULES } from '../config/hazards.js';
import { recommend } from '../keepalive/recommend.js';
import { FileAuditor, type Finding, fileEvidence, human, unreadable } from './findings.js';
import type { AuditOptions, ConfigAudit } from './nginx.js';
import { hazardBox, isL4, tightest } from './profiles.js';
import {
  asArray,
  asObject,
  field,
  type Json,
  type Place,
  readYaml,
  YamlError,
  type YamlFile,
} from './yaml-source.js';

const HOUR = 3_600_000;

/** A protobuf Duration as JSON/YAML writes it: "300s", "0.5s", or {seconds, nanos}. Undefined: not a duration. */
export function envoyDurationMs(v: Json | undefined): number | undefined {
  if (typeof v === 'string') {
    const m = /^([0-9]+(?:\.[0-9]+)?)s$/.exec(v.trim());
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  }
  const o = asObject(v);
  if (o && (typeof o.seconds === 'number' || typeof o.seconds === 'string')) {
    return Number(o.seconds) * 1000 + Math.round(Number(o.nanos ?? 0) / 1e6);
  }
  return undefined;
}

type Obj = { [key: string]: Json };

/** A value with where its key was written (or the object holding the default). */
interface At<T> {
  value: T;
  at: Place;
  set: boolean;
}

class Auditor extends FileAuditor {
  constructor(
    private readonly y: YamlFile,
    private readonly opts: AuditOptions,
  ) {
    super('envoy');
  }

  private duration(obj: Obj | undefined, key: string, fallbackMs: number, holder: object): At<number> {
    const raw = obj?.[key];
    if (raw === undefined || obj === undefined)
      return { value: fallbackMs, at: this.y.at(holder), set: false };
    const ms = envoyDurationMs(raw);
    const at = this.y.at(obj, key);
    if (ms === undefined) {
      throw new YamlError(`${key}: "${JSON.stringify(raw)}" is not a duration`, at);
    }
    // 0 disables the timeout.
    return { value: ms === 0 ? Number.POSITIVE_INFINITY : ms, at, set: true };
  }

  run(root: Obj): void {
    const resources = asObject(root.static_resources);
    if (!resources) {
      throw new YamlError(
        'no static_resources: not an Envoy bootstrap (dynamic resources are not read)',
        this.y.at(root),
      );
    }
    const clusters = asArray(resources.clusters)
      .map(asObject)
      .filter((c): c is Obj => c !== undefined);
    /** The longest a request routed to each cluster waits for its response. */
    const waits = new Map<string, number>();
    for (const l of asArray(resources.listeners)) {
      const listener = asObject(l);
      if (listener) this.listener(listener, waits);
    }
    for (const c of clusters) this.cluster(c, waits.get(String(c.name ?? '')));
  }

  private listener(listener: Obj, waits: Map<string, number>): void {
    const name = String(listener.name ?? 'listener');
    let longest: At<number> | undefined;
    let keepaliveIdle: At<number> | undefined;
    /** The HTTP/2 PING interval of an HCM that speaks only HTTP/2 downstream: PINGs are packets, so they keep an L4 flow too. */
    let h2Ping: number | undefined;
    for (const chain of asArray(listener.filter_chains)) {
      for (const f of asArray(field(chain, 'filters'))) {
        const filter = asObject(f);
        const config = asObject(filter?.typed_config);
        if (!filter || !config) continue;
        const type = String(filter.name ?? config['@type'] ?? '');
        if (
          /http_connection_manager/i.test(type) ||
          /HttpConnectionManager/.test(String(config['@type'] ?? ''))
        ) {
          const common = asObject(config.common_http_protocol_options);
          const idle = this.duration(common, 'idle_timeout', HOUR, config);
          if (!keepaliveIdle || idle.value < keepaliveIdle.value) keepaliveIdle = idle;
          const streamIdle = this.duration(config, 'stream_idle_timeout', 300_000, config);
          const ping = asObject(field(config.http2_protocol_options, 'connection_keepalive'));
          if (ping && config.codec_type === 'HTTP2') {
            const interval = this.duration(ping, 'interval', Number.POSITIVE_INFINITY, ping).value;
            h2Ping = Math.min(h2Ping ?? interval, interval);
          }
          for (const vh of asArray(field(config.route_config, 'virtual_hosts'))) {
            for (const r of asArray(field(vh, 'routes'))) {
              const route = asObject(field(r, 'route'));
              if (!route) continue;
              const timeout = this.duration(route, 'timeout', 15_000, route);
              // A request waits for its response until the route timeout or the stream's idle timeout, whichever is first.
              const wait = timeout.value <= streamIdle.value ? timeout : streamIdle;
              if (!longest || wait.value > longest.value) longest = wait;
              const cluster = String(route.cluster ?? '');
              if (cluster) waits.set(cluster, Math.max(waits.get(cluster) ?? 0, wait.value));
            }
          }
        } else if (/tcp_proxy/i.test(type) || /TcpProxy/.test(String(config['@type'] ?? ''))) {
          const idle = this.duration(config, 'idle_timeout', HOUR, config);
          if (!longest || idle.value > longest.value) longest = idle;
          const cluster = String(config.cluster ?? '');
          if (cluster) waits.set(cluster, Math.max(waits.get(cluster) ?? 0, idle.value));
        }
      }
    }
    if (keepaliveIdle && Number.isFinite(keepaliveIdle.value))
      this.serverKeepalive(keepaliveIdle.value / 1000);
    for (const m of this.opts.front) {
      const box = hazardBox(m);
      if (keepaliveIdle && RULES.keepaliveRace(keepaliveIdle.value, box)) {
        const want = recommend(Math.max(2, m.idleSeconds)).httpServerKeepaliveTimeout;
        this.add(
          'error',
          'envoy-idle-timeout-below-lb',
          keepaliveIdle.at,
          `listener "${name}": idle_timeout ${human(keepaliveIdle.value / 1000)} is not above ${m.name}'s idle timeout ${human(m.idleSeconds)}, and ${m.name} pools its connections to Envoy`,
          `Envoy closes an idle downstream connection that ${m.name} still pools: it reuses it and the request fails with a 502.`,
          `common_http_protocol_options: { idle_timeout: ${want}s }`,
        );
      }
      if (longest && RULES.responseOutlivesL7(longest.value, box)) {
        this.add(
          'warning',
          'envoy-response-outlives-lb',
          longest.at,
          `listener "${name}" lets a response or a tunnel stay quiet ${Number.isFinite(longest.value) ? human(longest.value / 1000) : 'without limit'}, longer than ${m.name}'s idle timeout ${human(m.idleSeconds)}`,
          `a response slower than ${human(m.idleSeconds)} never reaches the client: ${box.failure} (TCP keepalive does not count as data for an L7 proxy).`,
          `timeout: ${Math.max(1, m.idleSeconds - 1)}s  # the route's, or stream_idle_timeout / tcp_proxy idle_timeout`,
        );
      }
    }
    const lb = tightest(this.opts.front.filter(isL4));
    if (!lb) return;
    const box = hazardBox(lb);
    const opts = asArray(listener.socket_options)
      .map(asObject)
      .filter((o): o is Obj => o !== undefined);
    const opt = (level: number, optname: number) =>
      opts.find((o) => Number(o.level) === level && Number(o.name) === optname);
    const on = opt(1, 9);
    const wait = longest?.value ?? HOUR;
    if (on && Number(on.int_value ?? 0) !== 0) {
      const read = (n: number) => {
        const o = opt(6, n);
        return o ? Number(o.int_value) : undefined;
      };
      const spec = {
        ...(read(4) !== undefined ? { idle: read(4)! } : {}),
        ...(read(5) !== undefined ? { interval: read(5)! } : {}),
        ...(read(6) !== undefined ? { count: read(6)! } : {}),
      };
      const t = keepaliveTiming(spec, box.idleMs, this.opts.system);
      const at = this.y.at(opt(6, t.late === 'interval' ? 5 : 4) ?? on);
      if (t.relies.length > 0) this.dependents.push({ ...fileEvidence(at), relies: t.relies });
      if (t.late) {
        this.add(
          'error',
          'envoy-listener-keepalive-too-late',
          at,
          `listener "${name}": TCP keepalive probes an idle client connection every max(${t.idle}, ${t.interval}) = ${human(t.period)}${t.relies.length > 0 ? ` (${t.relies.join(', ')} from this host's kernel)` : ''}, not below ${lb.name}'s idle timeout ${human(lb.idleSeconds)}`,
          `an idle client connection is forgotten by ${lb.name} before the next probe, and ${box.failure}.`,
          listenerKeepaliveFix(box),
        );
      }
      return;
    }
    // HTTP/2 PINGs more often than the box forgets keep every client connection of this listener alive.
    if (h2Ping !== undefined && h2Ping < box.idleMs) return;
    const severity = RULES.listenerWithoutKeepalive(wait, box);
    this.add(
      severity,
      'envoy-listener-no-keepalive',
      this.y.at(listener, 'name'),
      `listener "${name}" sets no SO_KEEPALIVE socket option, facing ${lb.name} (idle timeout ${human(lb.idleSeconds)})`,
      severity === 'error'
        ? `a request may wait ${Number.isFinite(wait) ? human(wait / 1000) : 'without limit'} with nothing on the client connection, longer than ${lb.name}'s ${human(lb.idleSeconds)}: ${box.failure}.`
        : `nothing here waits ${human(lb.idleSeconds)} today, but a dead client or a flow ${lb.name} forgot is only noticed at Envoy's own timeouts.`,
      listenerKeepaliveFix(box),
    );
  }

  private cluster(cluster: Obj, waitMs: number | undefined): void {
    const name = String(cluster.name ?? 'cluster');
    const options = asObject(
      field(
        cluster.typed_extension_protocol_options,
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      ),
    );
    const common =
      asObject(options?.common_http_protocol_options) ?? asObject(cluster.common_http_protocol_options);
    const holder = common ? common : cluster;
    const idle = this.duration(common, 'idle_timeout', HOUR, holder);
    if (Number.isFinite(idle.value)) this.poolIdle(idle.value / 1000);
    const hosts = asArray(cluster.load_assignment && field(cluster.load_assignment, 'endpoints'))
      .flatMap((e) => asArray(field(e, 'lb_endpoints')))
      .map((e) =>
        String(field(field(field(field(e, 'endpoint'), 'address'), 'socket_address'), 'address') ?? ''),
      )
      .filter(Boolean);
    if (hosts.length > 0 && hosts.every((h) => h === 'localhost' || h.startsWith('127.') || h === '::1'))
      return;
    const tcp = asObject(field(cluster.upstream_connection_options, 'tcp_keepalive'));
    const lb = tightest(this.opts.upstream.filter(isL4));
    const clusterAt = this.y.at(cluster, 'name');
    if (!lb) {
      if (!tcp) {
        this.add(
          'info',
          'envoy-cluster-no-keepalive',
          clusterAt,
          `cluster "${name}" has no upstream_connection_options.tcp_keepalive toward ${hosts.join(', ') || 'its endpoints'}; no middlebox between Envoy and them was given`,
          'if a firewall, NAT or load balancer sits on that path, an upstream connection idle longer than its timeout is forgotten; say so with --upstream-lb to check it.',
          'upstream_connection_options: { tcp_keepalive: {} }',
        );
      }
      return;
    }
    const box = hazardBox(lb);
    if (tcp) {
      const num = (k: string) => (tcp[k] === undefined ? undefined : Number(tcp[k]));
      const spec = {
        ...(num('keepalive_time') !== undefined ? { idle: num('keepalive_time')! } : {}),
        ...(num('keepalive_interval') !== undefined ? { interval: num('keepalive_interval')! } : {}),
        ...(num('keepalive_probes') !== undefined ? { count: num('keepalive_probes')! } : {}),
      };
      const t = keepaliveTiming(spec, box.idleMs, this.opts.system);
      const at = this.y.at(tcp, t.late === 'interval' ? 'keepalive_interval' : 'keepalive_time');
      if (t.relies.length > 0) this.dependents.push({ ...fileEvidence(at), relies: t.relies });
      if (t.late) {
        this.add(
          'error',
          'envoy-cluster-keepalive-too-late',
          at,
          `cluster "${name}": tcp_keepalive probes an idle upstream connection every max(${t.idle}, ${t.interval}) = ${human(t.period)}${t.relies.length > 0 ? ` (${t.relies.join(', ')} from this host's kernel)` : ''}, not below ${lb.name}'s idle timeout ${human(lb.idleSeconds)}`,
          `a pooled or waiting upstream connection is forgotten by ${lb.name} before the next probe, and ${box.failure}.`,
          clusterKeepaliveFix(box),
        );
      }
      return;
    }
    // An HTTP/2-only cluster whose PINGs come more often than the box forgets keeps its pooled connections alive.
    const h2 =
      asObject(
        field(field(options?.explicit_http_config, 'http2_protocol_options'), 'connection_keepalive'),
      ) ?? asObject(field(cluster.http2_protocol_options, 'connection_keepalive'));
    if (h2 && this.duration(h2, 'interval', Number.POSITIVE_INFINITY, h2).value < box.idleMs) return;
    const pool = { keepalive: 1, keepaliveTimeoutMs: idle.value };
    if (RULES.poolOutlivesBox(pool, box)) {
      this.add(
        'error',
        'envoy-pool-outlives-lb',
        idle.set ? idle.at : clusterAt,
        `cluster "${name}" keeps idle upstream connections ${Number.isFinite(idle.value) ? human(idle.value / 1000) : 'forever'}${idle.set ? '' : ' (the default)'}, not less than ${lb.name}'s idle timeout ${human(lb.idleSeconds)}, without TCP keepalive`,
        `Envoy reuses a pooled connection ${lb.name} already forgot, and ${box.failure} (503 "upstream connect error or disconnect/reset before headers").`,
        `${clusterKeepaliveFix(box)}\n# or in the cluster's HttpProtocolOptions: common_http_protocol_options: { idle_timeout: ${recommend(lb.idleSeconds).clientPoolIdleTimeout}s }`,
      );
    }
    if (waitMs !== undefined && RULES.upstreamWaitsTooLong(waitMs, box)) {
      this.add(
        'error',
        'envoy-cluster-no-keepalive',
        clusterAt,
        `cluster "${name}" has no tcp_keepalive while a request may wait ${Number.isFinite(waitMs) ? human(waitMs / 1000) : 'without limit'} on it, not below ${lb.name}'s idle timeout ${human(lb.idleSeconds)}`,
        `a request that keeps the upstream silent that long loses its connection: ${box.failure}.`,
        clusterKeepaliveFix(box),
      );
    }
  }
}

function listenerKeepaliveFix(box: Box): string {
  const [idle, intvl, cnt] = recommend(Math.max(2, Math.floor(box.idleMs / 1000)))
    .soKeepalive.split(':')
    .map((s) => Number.parseInt(s, 10));
  return [
    'socket_options:',
    '- { level: 1, name: 9, int_value: 1, state: STATE_PREBIND }  # SO_KEEPALIVE',
    `- { level: 6, name: 4, int_value: ${idle}, state: STATE_PREBIND }  # TCP_KEEPIDLE`,
    `- { level: 6, name: 5, int_value: ${intvl}, state: STATE_PREBIND }  # TCP_KEEPINTVL`,
    `- { level: 6, name: 6, int_value: ${cnt}, state: STATE_PREBIND }  # TCP_KEEPCNT`,
  ].join('\n');
}

function clusterKeepaliveFix(box: Box): string {
  const [idle, intvl, cnt] = recommend(Math.max(2, Math.floor(box.idleMs / 1000)))
    .soKeepalive.split(':')
    .map((s) => Number.parseInt(s, 10));
  return `upstream_connection_options: { tcp_keepalive: { keepalive_time: ${idle}, keepalive_interval: ${intvl}, keepalive_probes: ${cnt} } }`;
}

export function auditEnvoy(file: string, opts: AuditOptions): ConfigAudit {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return unreadable(file, error, 'envoy');
  }
  const sources = new Map([[file, text]]);
  try {
    const y = readYaml(text, file);
    const root = asObject(y.docs[0]);
    if (!root)
      throw new YamlError('empty or not a mapping: not an Envoy bootstrap', { file, line: 1, col: 1 });
    const auditor = new Auditor(y, opts);
    auditor.run(root);
    return auditor.audit(sources);
  } catch (error) {
    if (!(error instanceof YamlError)) throw error;
    return invalid(error, 'envoy', sources, 'envoy --mode validate refuses this bootstrap');
  }
}

/** The one finding for a YAML file that does not parse or is not what it should be. */
export function invalid(
  error: YamlError,
  layer: Finding['layer'],
  sources: Map<string, string>,
  refused: string,
): ConfigAudit {
  return {
    findings: [
      {
        severity: 'error',
        code: 'config-invalid',
        layer,
        message: error.message,
        evidence: fileEvidence(error.place),
        why: `${refused}, and nothing after it was checked.`,
        fix: 'fix the file at this position',
      },
    ],
    systemDependents: [],
    sources,
    timeouts: {},
  };
}
