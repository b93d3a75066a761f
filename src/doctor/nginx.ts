/**
 * Findings from nginx configuration files. The text goes through keepwire's
 * lexer and parser (includes expanded, relative to the configuration prefix
 * as nginx does); every setting is read in nginx's dialect
 * (config/nginx-dialect.ts): the directive table's parser, default and merge,
 * unknown directives ignored, nginx's own value forms. A keepalive's timing
 * is judged by config/hazards.ts (keepaliveTiming), as for `check`.
 * keepwire's own `-c` files go through the model and the whole hazard engine
 * (keepwire-config.ts).
 *
 * Not yet on the model: nginx's blocks are walked here (servers, nested
 * locations, `if`, `*_pass`) and the hazard rules other than the timing
 * (listener without keepalive, pools, HTTP/1.0, Connection) are this
 * file's, with fixes in nginx's own syntax.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DiagnosticList } from '../config/diagnostics.js';
import { D } from '../config/directives.js';
import { isLocal, keepaliveTiming, RULES } from '../config/hazards.js';
import type { Address, ProxyTarget } from '../config/model.js';
import {
  type NginxKeepalive,
  nginxAddress,
  nginxKeepaliveSpec,
  nginxListen,
  nginxProxyTarget,
  nginxSetting,
  nginxSocketKey,
  parseNginxSoKeepalive,
} from '../config/nginx-dialect.js';
import { type ArgNode, type DirectiveNode, parseText } from '../config/parser.js';
import {
  detectionTime,
  probePeriod,
  recommend,
  sysctlLines,
  sysctlSettings,
} from '../keepalive/recommend.js';
import { KERNEL_LIMITS, type KeepaliveSpec, parseSoKeepalive } from '../keepalive/spec.js';
import { KEEPALIVE_SYSCTLS, type SystemKeepaliveDefaults } from '../keepalive/system.js';
import {
  type Dependent,
  type Finding,
  type FindingSeverity,
  fileEvidence,
  human,
  type Layer,
} from './findings.js';
import { expiryFailure, hazardBox, isL4, type Middlebox, tightest } from './profiles.js';

export interface ConfigAudit {
  findings: Finding[];
  /** Places that inherit the kernel's keepalive values (for the host layer's severity). */
  systemDependents: Dependent[];
  /** Text of every file read, for showing source lines. */
  sources: Map<string, string>;
  /** HTTP keep-alive timeouts found, for the chain: the shortest server one, the longest upstream pool one. */
  timeouts: { server?: number; upstreamPool?: number };
}

export interface AuditOptions {
  /** Middleboxes in front of the server (client side). */
  front: Middlebox[];
  /** Middleboxes between the server and its upstreams, when known. */
  upstream: Middlebox[];
  system: SystemKeepaliveDefaults;
  /** `1.22.1`; undefined when unknown (then pre-1.29.7 semantics are assumed and said). */
  nginxVersion?: string;
}

/** The release that made upstream keep-alive work without proxy_http_version / Connection "". */
const KEEPALIVE_DEFAULTS_VERSION = [1, 29, 7] as const;

export function versionAtLeast(version: string, want: readonly number[]): boolean {
  const parts = version.split('.').map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < want.length; i++) {
    const have = parts[i] ?? 0;
    if (have !== want[i]) return have > want[i]!;
  }
  return true;
}

/** The blocks inside a server that inherit its settings and may hold a `*_pass`. */
const NESTED = new Set(['location', 'if', 'limit_except']);

/** Directives whose `*_pass` opens upstream connections, with their timeout prefix. */
const PASS = ['proxy', 'grpc', 'fastcgi', 'uwsgi', 'scgi'] as const;

function children(node: DirectiveNode | undefined, name: string): DirectiveNode[] {
  return (node?.children ?? []).filter((c) => c.name === name);
}

interface Upstream {
  node: DirectiveNode;
  name: string;
  keepalive?: DirectiveNode;
  keepaliveTimeout: number;
  keepaliveTimeoutNode?: DirectiveNode;
  /** For isLocal; a server that does not parse keeps its text as host (not local). */
  servers: { address: Address; text: string }[];
}

/** A `*_pass`'s read timeout (seconds): `grpc_read_timeout` and the like mean what proxy_read_timeout does. */
function readTimeout(chain: readonly DirectiveNode[], kind: (typeof PASS)[number]) {
  const found = nginxSetting<number>(
    chain,
    D.proxyReadTimeout,
    'location',
    'proxyReadTimeoutMs',
    `${kind}_read_timeout`,
  );
  return { value: found.value / 1000, node: found.node };
}

class Auditor {
  readonly findings: Finding[] = [];
  readonly systemDependents: Dependent[] = [];
  readonly timeouts: { server?: number; upstreamPool?: number } = {};
  private readonly lbFront: Middlebox | undefined;
  private readonly lbUpstream: Middlebox | undefined;

  constructor(
    private readonly layer: Layer,
    private readonly opts: AuditOptions,
  ) {
    this.lbFront = tightest(opts.front.filter(isL4));
    this.lbUpstream = tightest(opts.upstream.filter(isL4));
  }

  private add(
    severity: FindingSeverity,
    code: string,
    at: { file: string; line: number; col: number },
    message: string,
    why: string,
    fix: string,
    value?: string,
  ): void {
    this.findings.push({
      severity,
      code,
      layer: this.layer,
      message,
      evidence: fileEvidence(at, value),
      why,
      fix,
    });
  }

  /** Listening sockets (by address) whose so_keepalive is set on some `listen` of that address. */
  private readonly keepaliveSockets = new Set<string>();
  private readonly inStream = new WeakSet<DirectiveNode>();

  audit(top: DirectiveNode[]): void {
    const root: DirectiveNode = { file: '', line: 0, col: 0, name: '', args: [], children: top };
    // Socket options belong to the listening socket, which every server with the same
    // address shares: one `listen 80 so_keepalive=...` covers the plain `listen 80` elsewhere.
    for (const block of [...children(root, 'http'), ...children(root, 'stream')]) {
      for (const server of children(block, 'server')) {
        for (const l of children(server, 'listen')) {
          const listen = nginxListen(l.args.map((a) => a.value));
          if (listen.soKeepalive) this.keepaliveSockets.add(`${block.name} ${nginxSocketKey(listen)}`);
        }
      }
    }
    for (const http of children(root, 'http')) this.http([root, http]);
    for (const stream of children(root, 'stream')) this.stream([root, stream]);
  }

  private upstreams(block: DirectiveNode): Map<string, Upstream> {
    const map = new Map<string, Upstream>();
    for (const node of children(block, 'upstream')) {
      const name = node.args[0]?.value ?? '';
      const keepalive = children(node, 'keepalive').at(-1);
      const timeout = nginxSetting<number>(
        [node],
        D.upstreamKeepaliveTimeout,
        'http_upstream',
        'keepaliveTimeoutMs',
      );
      const timeoutNode = timeout.node;
      const u: Upstream = {
        node,
        name,
        keepaliveTimeout: timeout.value / 1000,
        servers: children(node, 'server').map((s) => {
          const text = s.args[0]?.value ?? '';
          // nginx: an upstream server without a port is on port 80.
          const address = nginxAddress(text, 80) ?? { host: text, port: 0, text };
          return { address, text };
        }),
      };
      if (keepalive) {
        u.keepalive = keepalive;
        if (block.name === 'http')
          this.timeouts.upstreamPool = Math.max(this.timeouts.upstreamPool ?? 0, u.keepaliveTimeout);
      }
      if (timeoutNode) u.keepaliveTimeoutNode = timeoutNode;
      map.set(name, u);
    }
    return map;
  }

  private http(chain: DirectiveNode[]): void {
    const http = chain[chain.length - 1]!;
    const ups = this.upstreams(http);
    for (const server of children(http, 'server')) {
      const sChain = [...chain, server];
      const locations: { chain: DirectiveNode[]; pass: DirectiveNode; kind: (typeof PASS)[number] }[] = [];
      const walk = (c: DirectiveNode[]) => {
        const block = c[c.length - 1]!;
        for (const kind of PASS) {
          const pass = children(block, `${kind}_pass`).at(-1);
          if (pass) locations.push({ chain: c, pass, kind });
        }
        for (const child of block.children ?? []) {
          if (child.children && NESTED.has(child.name)) walk([...c, child]);
        }
      };
      walk(sChain);
      let longest = 0;
      let longestAt: DirectiveNode | undefined;
      let longestName = 'proxy_read_timeout';
      for (const loc of locations) {
        const { value: t, node } = readTimeout(loc.chain, loc.kind);
        if (t > longest) {
          longest = t;
          longestAt = node ?? loc.pass;
          longestName = `${loc.kind}_read_timeout`;
        }
      }
      for (const listen of listensOf(server))
        this.listen(listen, { longest, name: longestName, at: longestAt });
      this.serverKeepalive(sChain, server);
      for (const loc of locations) {
        const read = readTimeout(loc.chain, loc.kind).value;
        this.longResponse(loc.pass, read, `${loc.kind}_read_timeout`);
        if (loc.kind !== 'proxy' && loc.kind !== 'grpc') continue;
        const target = nginxProxyTarget(loc.pass.args[0]?.value ?? '', new Set(ups.keys()));
        const group = target?.kind === 'group' ? ups.get(target.name) : undefined;
        const keepalive = nginxSetting<KeepaliveSpec>(
          loc.chain,
          D.httpProxySocketKeepalive,
          'location',
          'proxySocketKeepalive',
        );
        this.upstreamLeg(keepalive, loc.pass, read, `${loc.kind}_read_timeout`, group, target, ups);
        if (group?.keepalive && loc.kind === 'proxy') this.keepaliveHeaders(loc.chain, loc.pass, group);
      }
    }
  }

  private stream(chain: DirectiveNode[]): void {
    const stream = chain[chain.length - 1]!;
    const ups = this.upstreams(stream);
    for (const server of children(stream, 'server')) {
      const sChain = [...chain, server];
      const proxyTimeout = nginxSetting<number>(
        sChain,
        D.streamProxyTimeout,
        'stream_server',
        'proxyTimeoutMs',
      );
      const timeoutNode = proxyTimeout.node;
      const timeout = proxyTimeout.value / 1000;
      for (const listen of children(server, 'listen')) {
        this.inStream.add(listen);
        this.listen(listen, { longest: timeout, name: 'proxy_timeout', at: timeoutNode });
      }
      const pass = children(server, 'proxy_pass').at(-1);
      if (pass) {
        const target = nginxProxyTarget(pass.args[0]?.value ?? '', new Set(ups.keys()));
        const group = target?.kind === 'group' ? ups.get(target.name) : undefined;
        const keepalive = nginxSetting<KeepaliveSpec>(
          sChain,
          D.streamProxySocketKeepalive,
          'stream_server',
          'proxySocketKeepalive',
        );
        this.upstreamLeg(keepalive, pass, timeout, 'proxy_timeout', group, target, ups);
      }
    }
  }

  private listen(
    node: DirectiveNode,
    wait: { longest: number; name: string; at: DirectiveNode | undefined },
  ): void {
    const address = node.args[0];
    if (!address || address.value.startsWith('unix:')) return;
    const listen = nginxListen(node.args.map((a) => a.value));
    const lb = this.lbFront;
    const comma = listen.commaArg === undefined ? undefined : node.args[listen.commaArg];
    const cleanAddress = listen.addressText;
    const keepParam = listen.soKeepalive && node.args[listen.soKeepalive.arg];
    const otherParams = listen.params;
    const fixed = (spec: string | undefined) =>
      `listen ${[cleanAddress, ...otherParams, ...(spec ? [`so_keepalive=${spec}`] : [])].join(' ')};`;
    const rec = lb ? recommend(lb.idleSeconds) : undefined;
    const keepText = listen.soKeepalive?.text;

    if (comma) {
      const at = { file: comma.file, line: comma.line, col: comma.col + comma.value.indexOf(',') };
      this.add(
        'error',
        'listen-comma',
        at,
        `"${comma.value}": nginx separates listen parameters with spaces, not commas`,
        `nginx -t fails with host not found in "${address.value}" of the "listen" directive, so nginx does not start (or a reload keeps the old config) and the keepalive setting never applies.`,
        fixed(keepText !== undefined ? this.fixedSpec(keepText, rec) : rec?.soKeepalive),
        comma.value,
      );
    }

    let spec: NginxKeepalive | undefined;
    if (keepParam && listen.soKeepalive && keepText !== undefined) {
      const valueCol = keepParam.col + listen.soKeepalive.valueOffset;
      spec = listen.soKeepalive.parsed;
      if (!spec.ok) {
        this.add(
          'error',
          'so-keepalive-invalid',
          { file: keepParam.file, line: keepParam.line, col: valueCol + spec.offset },
          spec.message,
          `nginx -t refuses "${keepParam.value}" (invalid so_keepalive value), so this configuration cannot be loaded.`,
          fixed(rec?.soKeepalive ?? '60s:10s:6'),
          keepParam.value,
        );
        return;
      }
      const refused = kernelRefusal(spec);
      if (refused) {
        this.add(
          'error',
          'so-keepalive-kernel-refuses',
          { file: keepParam.file, line: keepParam.line, col: valueCol + refused.offset(keepText) },
          `so_keepalive ${refused.field} ${refused.value} is outside what the kernel accepts (${refused.option} ${refused.min}..${refused.max})`,
          `nginx -t accepts it, but setsockopt(${refused.option}) fails with EINVAL when the listener opens: nginx only logs an alert and the listener runs with the kernel default, probing after ${human(this.opts.system.idle)}.`,
          fixed(rec?.soKeepalive ?? '60s:10s:6'),
          keepParam.value,
        );
      }
    }
    if (!lb) return;
    if (spec?.ok && spec.enable) {
      // A value the kernel refused was never set: the socket runs with the host's default for it.
      const refused = kernelRefusal(spec);
      const applied = refused ? { ...spec, [refused.field]: 0 } : spec;
      const eff = keepaliveTiming(nginxKeepaliveSpec(applied), lb.idleSeconds * 1000, this.opts.system);
      if (eff.relies.length > 0)
        this.systemDependents.push({ ...fileEvidence(keepParam!, keepParam!.value), relies: eff.relies });
      const period = eff.period;
      if (eff.late) {
        const inherited = eff.relies.map((f) => KEEPALIVE_SYSCTLS[f]);
        const from = inherited.length > 0 ? ` (${inherited.join(', ')} from this host)` : '';
        this.add(
          'error',
          'so-keepalive-too-long',
          keepParam!,
          `so_keepalive=${keepText} probes an idle connection every max(${eff.idle}, ${eff.interval}) = ${human(period)}${from}, not below ${lb.name}'s idle timeout ${human(lb.idleSeconds)}`,
          `a client connection idle for ${human(lb.idleSeconds)} (a long request waiting on ${wait.name}) is forgotten by ${lb.name} before the first probe, and ${expiryFailure(lb)}; a dead client goes unnoticed for ${human(detectionTime(eff))}.`,
          fixed(rec!.soKeepalive),
          keepParam!.value,
        );
      }
      return;
    }
    const block = this.inStream.has(node) ? 'stream' : 'http';
    if (!keepParam && this.keepaliveSockets.has(`${block} ${nginxSocketKey(listen)}`)) return;
    const long = RULES.listenerWithoutKeepalive(wait.longest * 1000, hazardBox(lb)) === 'error';
    this.add(
      long ? 'error' : 'info',
      'listen-no-keepalive',
      node,
      `listen ${cleanAddress} ${spec?.ok ? 'turns keepalive off' : 'has no so_keepalive'}, facing ${lb.name} (idle timeout ${human(lb.idleSeconds)})`,
      long
        ? `${wait.name} ${human(wait.longest)} lets a request wait longer than ${lb.name}'s ${human(lb.idleSeconds)} with nothing on the client connection: reset of a long request, as ${expiryFailure(lb)}.`
        : `nothing on this server waits ${human(lb.idleSeconds)} today (longest ${wait.name} ${human(wait.longest)}), but a dead client or a connection ${lb.name} forgot is only noticed at nginx's own timeouts, and a longer timeout later breaks silently.`,
      fixed(rec!.soKeepalive),
    );
  }

  /** The so_keepalive to write in a fix: the recommendation when there is an LB, else the value cleaned up. */
  private fixedSpec(text: string, rec: ReturnType<typeof recommend> | undefined): string {
    if (rec) return rec.soKeepalive;
    const parsed = parseSoKeepalive(text);
    return parsed.ok ? text : '60s:10s:6';
  }

  /** HTTP keep-alive toward an LB that pools connections to this server. */
  /**
   * HTTP keep-alive toward an LB that pools connections to this server. nginx
   * takes keepalive_timeout in a location too (for requests that end there):
   * each level that sets one is judged, each directive once.
   */
  private serverKeepalive(chain: DirectiveNode[], server: DirectiveNode): void {
    const own = nginxSetting<number>(chain, D.keepaliveTimeout, 'http_server', 'keepaliveTimeoutMs');
    this.timeouts.server = Math.min(this.timeouts.server ?? own.value / 1000, own.value / 1000);
    const levels = [own];
    const walk = (c: DirectiveNode[]) => {
      for (const child of c[c.length - 1]!.children ?? []) {
        if (!child.children || !NESTED.has(child.name)) continue;
        const inner = [...c, child];
        levels.push(nginxSetting<number>(inner, D.keepaliveTimeout, 'location', 'keepaliveTimeoutMs'));
        walk(inner);
      }
    };
    walk(chain);
    const reported = new Set<DirectiveNode | undefined>();
    for (const { value, node } of levels) {
      if (reported.has(node)) continue;
      reported.add(node);
      const timeout = value / 1000;
      for (const box of this.opts.front) {
        if (!RULES.keepaliveRace(value, hazardBox(box))) continue;
        const want = recommend(box.idleSeconds).httpServerKeepaliveTimeout;
        this.add(
          'error',
          'keepalive-timeout-below-lb',
          node ?? server,
          `keepalive_timeout ${node ? node.args[0]!.value : `${timeout}s (default)`} is not above ${box.name}'s idle timeout ${human(box.idleSeconds)}, and ${box.name} pools its connections to this server`,
          `nginx closes an idle connection that ${box.name} still holds in its pool: ${box.name} reuses the stale pooled connection and the request fails with a 502.`,
          `keepalive_timeout ${want}s;`,
          node?.args[0]?.value,
        );
      }
    }
  }

  /** A response slower than an L7 proxy's idle timeout fails however TCP keepalive is set. */
  private longResponse(pass: DirectiveNode, read: number, name: string): void {
    for (const box of this.opts.front) {
      if (!RULES.responseOutlivesL7(read * 1000, hazardBox(box))) continue;
      this.add(
        'warning',
        'read-timeout-above-lb',
        pass,
        `${name} ${human(read)} lets a response take longer than ${box.name}'s idle timeout ${human(box.idleSeconds)}`,
        `a response slower than ${human(box.idleSeconds)} never reaches the client: ${expiryFailure(box)} (TCP keepalive does not count as data for an L7 proxy).`,
        `${name} ${box.idleSeconds - 1}s;`,
      );
    }
  }

  private upstreamLeg(
    keepalive: { value: KeepaliveSpec; node?: DirectiveNode },
    pass: DirectiveNode,
    wait: number,
    waitName: string,
    group: Upstream | undefined,
    target: ProxyTarget | undefined,
    groups: ReadonlyMap<string, Upstream>,
  ): void {
    const node = keepalive.node;
    const value = node?.args[0]?.value ?? 'off';
    const box = this.lbUpstream;
    const hosts = group
      ? group.servers.map((s) => s.text)
      : target?.kind === 'address'
        ? [target.address.text]
        : [];
    if (target && isLocal(target, groups)) return;
    // nginx takes on|off only: the kernel's values decide the timing.
    const spec = keepalive.value.enable ? keepalive.value : undefined;
    const where = node ?? pass;
    if (!box) {
      if (!spec) {
        this.add(
          'info',
          'upstream-no-keepalive',
          where,
          `no proxy_socket_keepalive toward ${hosts.join(', ') || 'the upstream'}, which is not on this host; no middlebox between nginx and it was given`,
          'if a firewall, NAT or load balancer sits on that path, an upstream connection idle longer than its timeout is forgotten; say so with --upstream-lb or --chain to check it.',
          'proxy_socket_keepalive on;',
        );
      }
      return;
    }
    const rec = recommend(box.idleSeconds);
    // nginx takes only on|off here, so the kernel defaults decide the timing.
    const sysLate = probePeriod(this.opts.system) >= box.idleSeconds;
    const sysctls = sysctlLines(sysctlSettings(rec, this.opts.system.interval));
    const fixLine = `proxy_socket_keepalive on;${sysLate ? ` # plus ${sysctls.join(', ')} on this host` : ''}`;
    if (spec) {
      const eff = keepaliveTiming(spec, box.idleSeconds * 1000, this.opts.system);
      if (eff.relies.length > 0)
        this.systemDependents.push({ ...fileEvidence(where, value), relies: eff.relies });
      const period = eff.period;
      if (eff.late) {
        this.add(
          'error',
          'upstream-keepalive-too-long',
          where,
          `proxy_socket_keepalive ${value} probes every max(${eff.idle}, ${eff.interval}) = ${human(period)}${eff.relies.length > 0 ? ' (the kernel defaults of this host)' : ''}, not below ${box.name}'s idle timeout ${human(box.idleSeconds)} between nginx and its upstream`,
          `an upstream connection waiting on a slow response or idle in the pool is forgotten by ${box.name} before the first probe, and ${expiryFailure(box)}.`,
          sysctls.join('\n'),
          value,
        );
      }
      return;
    }
    if (RULES.upstreamWaitsTooLong(wait * 1000, hazardBox(box))) {
      this.add(
        'error',
        'upstream-no-keepalive',
        where,
        `no proxy_socket_keepalive toward the upstream while ${waitName} ${human(wait)} is not below ${box.name}'s idle timeout ${human(box.idleSeconds)} on that path`,
        `a request that keeps the upstream silent for ${human(box.idleSeconds)} loses its upstream connection: reset of a long request, as ${expiryFailure(box)}.`,
        fixLine,
      );
    }
    const pool = {
      keepalive: group?.keepalive ? 1 : 0,
      keepaliveTimeoutMs: (group?.keepaliveTimeout ?? 0) * 1000,
    };
    if (group?.keepalive && RULES.poolOutlivesBox(pool, hazardBox(box))) {
      this.add(
        'error',
        'upstream-pool-outlives-lb',
        group.keepaliveTimeoutNode ?? group.keepalive,
        `upstream "${group.name}" keeps idle connections ${human(group.keepaliveTimeout)}, not less than ${box.name}'s idle timeout ${human(box.idleSeconds)}, without TCP keepalive`,
        `nginx reuses a stale pooled connection that ${box.name} already forgot, and ${expiryFailure(box)}; nginx retries once on a reused connection, but not for POST.`,
        `keepalive_timeout ${rec.clientPoolIdleTimeout}s;`,
      );
    }
  }

  /** Before 1.29.7, nginx speaks HTTP/1.0 and sends `Connection: close` upstream unless told otherwise. */
  private keepaliveHeaders(chain: DirectiveNode[], pass: DirectiveNode, group: Upstream): void {
    const version = this.opts.nginxVersion;
    const modern = version !== undefined && versionAtLeast(version, KEEPALIVE_DEFAULTS_VERSION);
    const seen =
      version === undefined ? 'nginx version unknown; nginx before 1.29.7 assumed' : `nginx ${version}`;
    const httpVersion = nginxSetting<string>(chain, D.proxyHttpVersion, 'location', 'proxyHttpVersion').node;
    const pooled = `upstream "${group.name}" pools connections (keepalive ${group.keepalive!.args[0]?.value ?? ''})`;
    if (httpVersion?.args[0]?.value === '1.0' || (!httpVersion && !modern)) {
      this.add(
        'warning',
        'upstream-keepalive-http10',
        httpVersion ?? pass,
        `${pooled} but this location speaks HTTP/1.0 to it (${httpVersion ? 'proxy_http_version 1.0' : `the default before nginx 1.29.7; ${seen}`})`,
        'every upstream request closes its connection, so the pool stays empty and each request pays a new TCP (and TLS) handshake, with TIME_WAIT piling up on the upstream side.',
        'proxy_http_version 1.1;',
      );
    }
    if (modern) return;
    const headers = nginxSetting<{ name: string; value: string }[]>(
      chain,
      D.proxySetHeader,
      'location',
      'proxySetHeaders',
    );
    if (headers.value.some((h) => h.name.toLowerCase() === 'connection')) return;
    const dropped = headers.node;
    const elsewhere = chain
      .slice(0, -1)
      .flatMap((c) => children(c, 'proxy_set_header'))
      .find((h) => h.args[0]?.value.toLowerCase() === 'connection');
    this.add(
      'warning',
      'upstream-keepalive-connection-close',
      pass,
      `${pooled} but requests from here carry "Connection: close" (no proxy_set_header Connection ""; ${seen})${
        elsewhere && dropped
          ? `; the one at ${elsewhere.file}:${elsewhere.line} is not inherited because this level sets its own proxy_set_header (${dropped.file}:${dropped.line})`
          : ''
      }`,
      'nginx before 1.29.7 asks the upstream to close every connection, so the keep-alive pool never keeps one.',
      'proxy_set_header Connection "";',
    );
  }
}

function kernelRefusal(spec: { idle: number; interval: number; count: number }) {
  for (const field of ['idle', 'interval', 'count'] as const) {
    const v = spec[field];
    const limit = KERNEL_LIMITS[field];
    if (v !== 0 && (v < limit.min || v > limit.max)) {
      const index = field === 'idle' ? 0 : field === 'interval' ? 1 : 2;
      return {
        field,
        value: v,
        ...limit,
        offset: (text: string) => {
          const parts = text.split(':');
          return parts.slice(0, index).reduce((n, p) => n + p.length + 1, 0);
        },
      };
    }
  }
  return undefined;
}

/** An http server's listens; nginx gives a server without one `listen *:80`, pointed at the server here. */
function listensOf(server: DirectiveNode): DirectiveNode[] {
  const listens = children(server, 'listen');
  if (listens.length > 0) return listens;
  const at = { file: server.file, line: server.line, col: server.col };
  const address = { ...at, value: '*:80', quoted: false } as ArgNode;
  return [{ ...at, name: 'listen', args: [address] }];
}

export function auditNginx(file: string, opts: AuditOptions): ConfigAudit {
  const layer: Layer = 'nginx';
  const diags = new DiagnosticList();
  let text: string;
  const findings: Finding[] = [];
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    findings.push({
      severity: 'error',
      code: 'config-unreadable',
      layer,
      message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      evidence: { where: file, file },
      why: 'nothing in this file could be checked.',
      fix: `check the path and permissions of ${file}`,
    });
    return { findings, systemDependents: [], sources: new Map(), timeouts: {} };
  }
  const ast = parseText(text, file, diags, { includeRoot: path.dirname(path.resolve(file)) });
  for (const d of diags.items) {
    findings.push({
      severity: d.severity,
      code: 'config-syntax',
      layer,
      message: `${d.code}: ${d.message}`,
      evidence: fileEvidence(d),
      why: 'nginx -t fails on this, so the configuration cannot be (re)loaded.',
      fix: d.hint ?? 'fix the syntax at this position',
    });
  }
  const auditor = new Auditor(layer, opts);
  auditor.audit(ast.directives);
  return {
    findings: [...findings, ...auditor.findings],
    systemDependents: auditor.systemDependents,
    sources: ast.sources,
    timeouts: auditor.timeouts,
  };
}

export type { ArgNode };
/** nginx's so_keepalive form lives with the dialect; re-exported for doctor's callers. */
export { parseNginxSoKeepalive };
