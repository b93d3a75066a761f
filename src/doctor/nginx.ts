/**
 * Findings from nginx configuration files. Real nginx configs are full of
 * directives keepwire does not implement, so this walks the raw AST (with
 * includes expanded, relative to the configuration prefix as nginx does)
 * instead of keepwire's typed model, and only interprets the directives that
 * decide keepalive behaviour, with nginx's own value forms
 * (parseNginxSoKeepalive) and version-dependent defaults. keepwire's own
 * `-c` files do not come here: they go through the model and the one hazard
 * engine `check` uses (keepwire-config.ts, config/hazards.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DiagnosticList } from '../config/diagnostics.js';
import { D, defaultOf } from '../config/directives.js';
import { type ArgNode, type DirectiveNode, parseText } from '../config/parser.js';
import {
  detectionTime,
  probePeriod,
  recommend,
  sysctlLines,
  sysctlSettings,
} from '../keepalive/recommend.js';
import { KERNEL_LIMITS, parseSoKeepalive } from '../keepalive/spec.js';
import { KEEPALIVE_SYSCTLS, type SystemKeepaliveDefaults } from '../keepalive/system.js';
import { parseDuration } from '../units/time.js';
import {
  type Dependent,
  type Finding,
  type FindingSeverity,
  fileEvidence,
  human,
  type Layer,
} from './findings.js';
import { expiryFailure, isL4, type Middlebox, tightest } from './profiles.js';

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

/**
 * nginx's defaults, in seconds, from keepwire's directive table: keepwire
 * takes nginx's (ngx_http_core_module, ngx_http_proxy_module,
 * ngx_stream_proxy_module, ngx_http_upstream_keepalive_module), so there is
 * one place they are written.
 */
const DEFAULTS = {
  keepaliveTimeout: defaultOf(D.keepaliveTimeout)!.timeoutMs / 1000,
  readTimeout: defaultOf(D.proxyReadTimeout)! / 1000,
  streamProxyTimeout: defaultOf(D.streamProxyTimeout)! / 1000,
  upstreamKeepaliveTimeout: defaultOf(D.upstreamKeepaliveTimeout)! / 1000,
};

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

/** Directives whose `*_pass` opens upstream connections, with their timeout prefix. */
const PASS = ['proxy', 'grpc', 'fastcgi', 'uwsgi', 'scgi'] as const;

/** Seconds from an nginx time; undefined when it does not parse (the syntax check is nginx's job). */
function seconds(text: string): number | undefined {
  const parsed = parseDuration(text);
  return parsed.ok ? parsed.value / 1000 : undefined;
}

function children(node: DirectiveNode | undefined, name: string): DirectiveNode[] {
  return (node?.children ?? []).filter((c) => c.name === name);
}

/** nginx inheritance: the innermost level that sets a directive wins. */
function inherited(chain: readonly DirectiveNode[], name: string): DirectiveNode | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    const found = children(chain[i], name);
    if (found.length > 0) return found[found.length - 1];
  }
  return undefined;
}

/**
 * Array directives such as proxy_set_header are inherited only by levels that
 * set none of their own: one proxy_set_header in a location drops every one
 * from the server and http levels.
 */
function inheritedArray(chain: readonly DirectiveNode[], name: string): DirectiveNode[] {
  for (let i = chain.length - 1; i >= 0; i--) {
    const found = children(chain[i], name);
    if (found.length > 0) return found;
  }
  return [];
}

/** nginx's parse of an so_keepalive value (ngx_http_core_listen / ngx_stream_core_listen). */
type NginxKeepalive =
  | { ok: true; enable: boolean; idle: number; interval: number; count: number }
  | { ok: false; message: string; offset: number };

export function parseNginxSoKeepalive(value: string): NginxKeepalive {
  if (value === 'on') return { ok: true, enable: true, idle: 0, interval: 0, count: 0 };
  if (value === 'off') return { ok: true, enable: false, idle: 0, interval: 0, count: 0 };
  const fields = value.split(':');
  // nginx reads the third field to the end of the value, so a fourth field makes the count invalid.
  const [idleText = '', intervalText = '', ...rest] = fields;
  const countText = rest.join(':');
  const out = { ok: true as const, enable: true, idle: 0, interval: 0, count: 0 };
  let offset = 0;
  for (const [key, text] of [
    ['idle', idleText],
    ['interval', intervalText],
  ] as const) {
    if (text !== '') {
      const parsed = parseDuration(text);
      // ngx_parse_time(..., is_sec=1) knows no "ms".
      if (!parsed.ok || /ms/.test(text) || parsed.value % 1000 !== 0) {
        return {
          ok: false,
          message: `invalid so_keepalive ${key} "${text}": nginx takes whole seconds with y M w d h m s units`,
          offset: offset + (parsed.ok ? 0 : parsed.error.offset),
        };
      }
      out[key] = parsed.value / 1000;
    }
    offset += text.length + 1;
  }
  if (countText !== '') {
    if (!/^[0-9]+$/.test(countText)) {
      return {
        ok: false,
        message: `invalid so_keepalive count "${countText}": a plain number of probes`,
        offset: offset + (/[^0-9]/.exec(countText)?.index ?? 0),
      };
    }
    out.count = Number(countText);
  }
  // nginx treats 0 and empty alike, and refuses a value that sets nothing (`::`, `0::`).
  if (out.idle === 0 && out.interval === 0 && out.count === 0) {
    return {
      ok: false,
      message: `so_keepalive="${value}" sets nothing: every field is empty or 0`,
      offset: 0,
    };
  }
  return out;
}

interface Effective {
  idle: number;
  interval: number;
  count: number;
  /** Sysctls taken from the kernel's defaults. */
  inherited: string[];
  /** The same as fields. */
  relies: Dependent['relies'][number][];
}

function effective(
  spec: { idle: number; interval: number; count: number },
  sys: SystemKeepaliveDefaults,
): Effective {
  const inherited: string[] = [];
  const relies: Effective['relies'] = [];
  const pick = (field: 'idle' | 'interval' | 'count') => {
    if (spec[field] > 0) return spec[field];
    inherited.push(KEEPALIVE_SYSCTLS[field]);
    relies.push(field);
    return sys[field];
  };
  return { idle: pick('idle'), interval: pick('interval'), count: pick('count'), inherited, relies };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '[::1]' || host === '::1';
}

interface Upstream {
  node: DirectiveNode;
  name: string;
  keepalive?: DirectiveNode;
  keepaliveTimeout: number;
  keepaliveTimeoutNode?: DirectiveNode;
  servers: string[];
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
          if (l.args.some((a) => a.value.replace(/^,/, '').startsWith('so_keepalive=')))
            this.keepaliveSockets.add(`${block.name} ${socketKey(l.args[0]?.value ?? '')}`);
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
      const timeoutNode = children(node, 'keepalive_timeout').at(-1);
      const u: Upstream = {
        node,
        name,
        keepaliveTimeout:
          (timeoutNode && seconds(timeoutNode.args[0]?.value ?? '')) ?? DEFAULTS.upstreamKeepaliveTimeout,
        servers: children(node, 'server').map((s) => s.args[0]?.value ?? ''),
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
          if (
            child.children &&
            (child.name === 'location' || child.name === 'if' || child.name === 'limit_except')
          )
            walk([...c, child]);
        }
      };
      walk(sChain);
      let longest = 0;
      let longestAt: DirectiveNode | undefined;
      let longestName = 'proxy_read_timeout';
      for (const loc of locations) {
        const node = inherited(loc.chain, `${loc.kind}_read_timeout`);
        const t = (node && seconds(node.args[0]?.value ?? '')) ?? DEFAULTS.readTimeout;
        if (t > longest) {
          longest = t;
          longestAt = node ?? loc.pass;
          longestName = `${loc.kind}_read_timeout`;
        }
      }
      for (const listen of children(server, 'listen'))
        this.listen(listen, { longest, name: longestName, at: longestAt });
      this.serverKeepalive(sChain, server);
      for (const loc of locations) {
        const readNode = inherited(loc.chain, `${loc.kind}_read_timeout`);
        const read = (readNode && seconds(readNode.args[0]?.value ?? '')) ?? DEFAULTS.readTimeout;
        this.longResponse(loc.pass, read, `${loc.kind}_read_timeout`);
        if (loc.kind !== 'proxy' && loc.kind !== 'grpc') continue;
        const target = passTarget(loc.pass.args[0]?.value ?? '');
        const group = target === undefined ? undefined : ups.get(target);
        this.upstreamLeg(loc.chain, loc.pass, read, `${loc.kind}_read_timeout`, group, target);
        if (group?.keepalive && loc.kind === 'proxy') this.keepaliveHeaders(loc.chain, loc.pass, group);
      }
    }
  }

  private stream(chain: DirectiveNode[]): void {
    const stream = chain[chain.length - 1]!;
    const ups = this.upstreams(stream);
    for (const server of children(stream, 'server')) {
      const sChain = [...chain, server];
      const timeoutNode = inherited(sChain, 'proxy_timeout');
      const timeout =
        (timeoutNode && seconds(timeoutNode.args[0]?.value ?? '')) ?? DEFAULTS.streamProxyTimeout;
      for (const listen of children(server, 'listen')) {
        this.inStream.add(listen);
        this.listen(listen, { longest: timeout, name: 'proxy_timeout', at: timeoutNode });
      }
      const pass = children(server, 'proxy_pass').at(-1);
      if (pass) {
        const target = pass.args[0]?.value ?? '';
        this.upstreamLeg(sChain, pass, timeout, 'proxy_timeout', ups.get(target), target);
      }
    }
  }

  private listen(
    node: DirectiveNode,
    wait: { longest: number; name: string; at: DirectiveNode | undefined },
  ): void {
    const [address, ...params] = node.args;
    if (!address || address.value.startsWith('unix:')) return;
    const lb = this.lbFront;
    const comma = node.args.find((a) => a.value.includes(','));
    const cleanAddress = address.value.replace(/,$/, '');
    const keepParam = params.find((p) => p.value.replace(/^,/, '').startsWith('so_keepalive='));
    const otherParams = params
      .filter((p) => p !== keepParam)
      .map((p) => p.value.replace(/,/g, ''))
      .filter(Boolean);
    const fixed = (spec: string | undefined) =>
      `listen ${[cleanAddress, ...otherParams, ...(spec ? [`so_keepalive=${spec}`] : [])].join(' ')};`;
    const rec = lb ? recommend(lb.idleSeconds) : undefined;
    const keepText = keepParam?.value.replace(/^,/, '').slice('so_keepalive='.length);

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
    if (keepParam && keepText !== undefined) {
      const valueCol = keepParam.col + keepParam.value.indexOf('=') + 1;
      spec = parseNginxSoKeepalive(keepText);
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
      const eff = effective(applied, this.opts.system);
      if (eff.relies.length > 0)
        this.systemDependents.push({ ...fileEvidence(keepParam!, keepParam!.value), relies: eff.relies });
      const period = probePeriod(eff);
      if (period >= lb.idleSeconds) {
        const from = eff.inherited.length > 0 ? ` (${eff.inherited.join(', ')} from this host)` : '';
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
    if (!keepParam && this.keepaliveSockets.has(`${block} ${socketKey(address.value)}`)) return;
    const long = wait.longest >= lb.idleSeconds;
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
  private serverKeepalive(chain: DirectiveNode[], server: DirectiveNode): void {
    const node = inherited(chain, 'keepalive_timeout');
    const timeout = (node && seconds(node.args[0]?.value ?? '')) ?? DEFAULTS.keepaliveTimeout;
    this.timeouts.server = Math.min(this.timeouts.server ?? timeout, timeout);
    if (timeout === 0) return;
    for (const box of this.opts.front.filter((b) => b.pools)) {
      if (timeout > box.idleSeconds) continue;
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

  /** A response slower than an L7 proxy's idle timeout fails however TCP keepalive is set. */
  private longResponse(pass: DirectiveNode, read: number, name: string): void {
    for (const box of this.opts.front.filter((b) => !isL4(b))) {
      if (read <= box.idleSeconds) continue;
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
    chain: DirectiveNode[],
    pass: DirectiveNode,
    wait: number,
    waitName: string,
    group: Upstream | undefined,
    target: string | undefined,
  ): void {
    const node = inherited(chain, 'proxy_socket_keepalive');
    const value = node?.args[0]?.value ?? 'off';
    const box = this.lbUpstream;
    const hosts = group ? group.servers : target ? [target.replace(/^[a-z]+:\/\//, '')] : [];
    const local =
      hosts.length > 0 && hosts.every((h) => h.startsWith('unix:') || isLoopback(h.replace(/:[0-9]+$/, '')));
    if (local) return;
    let spec: { idle: number; interval: number; count: number } | undefined;
    if (value === 'on') spec = { idle: 0, interval: 0, count: 0 };
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
      const eff = effective(spec, this.opts.system);
      if (eff.relies.length > 0)
        this.systemDependents.push({ ...fileEvidence(where, value), relies: eff.relies });
      const period = probePeriod(eff);
      if (period >= box.idleSeconds) {
        this.add(
          'error',
          'upstream-keepalive-too-long',
          where,
          `proxy_socket_keepalive ${value} probes every max(${eff.idle}, ${eff.interval}) = ${human(period)}${eff.inherited.length > 0 ? ' (the kernel defaults of this host)' : ''}, not below ${box.name}'s idle timeout ${human(box.idleSeconds)} between nginx and its upstream`,
          `an upstream connection waiting on a slow response or idle in the pool is forgotten by ${box.name} before the first probe, and ${expiryFailure(box)}.`,
          sysctls.join('\n'),
          value,
        );
      }
      return;
    }
    if (wait >= box.idleSeconds) {
      this.add(
        'error',
        'upstream-no-keepalive',
        where,
        `no proxy_socket_keepalive toward the upstream while ${waitName} ${human(wait)} is not below ${box.name}'s idle timeout ${human(box.idleSeconds)} on that path`,
        `a request that keeps the upstream silent for ${human(box.idleSeconds)} loses its upstream connection: reset of a long request, as ${expiryFailure(box)}.`,
        fixLine,
      );
    }
    if (group?.keepalive && group.keepaliveTimeout >= box.idleSeconds) {
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
    const httpVersion = inherited(chain, 'proxy_http_version');
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
    const headers = inheritedArray(chain, 'proxy_set_header');
    const connection = headers.find((h) => h.args[0]?.value.toLowerCase() === 'connection');
    if (connection) return;
    const dropped = headers.length > 0 && headers[0]!.file !== '' ? headers[0] : undefined;
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

/** `80`, `*:80` and `0.0.0.0:80` are one socket. */
function socketKey(address: string): string {
  const a = address.replace(/,$/, '');
  if (/^[0-9]+$/.test(a)) return `*:${a}`;
  return a.replace(/^0\.0\.0\.0:/, '*:');
}

/** The upstream group name of `http://name/path`, or of a stream `proxy_pass name`. */
function passTarget(value: string): string | undefined {
  const m = /^(?:[a-z]+:\/\/)?([^/:$]+)/.exec(value);
  return m?.[1];
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
