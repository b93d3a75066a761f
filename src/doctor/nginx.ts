/**
 * Findings from nginx configuration files. The text goes through keepwire's
 * lexer and parser (includes expanded, relative to the configuration prefix
 * as nginx does) into keepwire's model, built in nginx's dialect
 * (config/nginx-dialect.ts `nginxModel`: the directive table's parsers,
 * defaults and merge over nginx's blocks). The one hazard engine
 * (config/hazards.ts) decides every keepalive hazard on it, as for `check`
 * and `doctor -c`; this file only words them in nginx's terms, with fixes
 * in nginx's syntax (NginxVoice), and adds what only nginx has: listens
 * nginx -t or the kernel refuses, and the `Connection: close` nginx sends
 * upstream before 1.29.7.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DiagnosticList } from '../config/diagnostics.js';
import { type Box, type Hazard, type HazardData, keepaliveHazards, type Legs } from '../config/hazards.js';
import type { Config, HttpLocation, HttpUpstreamGroup, Listen, StreamServer } from '../config/model.js';
import {
  KEEPALIVE_DEFAULTS_VERSION,
  type NginxModel,
  nginxModel,
  parseNginxSoKeepalive,
  versionAtLeast,
} from '../config/nginx-dialect.js';
import { type ArgNode, parseText } from '../config/parser.js';
import {
  detectionTime,
  probePeriod,
  recommend,
  sysctlLines,
  sysctlSettings,
} from '../keepalive/recommend.js';
import { KERNEL_LIMITS, parseSoKeepalive } from '../keepalive/spec.js';
import { KEEPALIVE_SYSCTLS, type SystemKeepaliveDefaults } from '../keepalive/system.js';
import { type Dependent, FileAuditor, type Finding, fileEvidence, human, type Layer } from './findings.js';
import { hazardBox, isL4, type Middlebox, tightest } from './profiles.js';

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
 * nginx's words for the engine's hazards: the same decision (rule, place,
 * values), the message in nginx's terms and the fix in nginx's syntax
 * (`proxy_socket_keepalive` takes on|off only, so a probe timing is fixed
 * with the host's sysctls; a listen keeps its other parameters).
 */
class NginxVoice extends FileAuditor {
  constructor(
    private readonly model: NginxModel,
    private readonly opts: AuditOptions,
  ) {
    super('nginx');
  }

  /** The directive's value as written at a place, the evidence of every nginx finding. */
  override valueAt(at: { file: string; line: number; col: number }): string | undefined {
    return this.model.values.get(`${at.file}:${at.line}:${at.col}`);
  }

  /** `proxy_read_timeout`, or `grpc_read_timeout` for a grpc_pass location. */
  private directiveOf(owner: object | undefined, proxyName: string): string {
    const kind = owner ? this.model.locations.get(owner as HttpLocation)?.kind : undefined;
    return kind && kind !== 'proxy' ? proxyName.replace(/^proxy_/, `${kind}_`) : proxyName;
  }

  private waitName(d: HazardData): string {
    return d.waitName === 'proxy_read_timeout'
      ? this.directiveOf(d.waitOwner, d.waitName)
      : (d.waitName ?? '');
  }

  /** The listen written back with its parameters and this so_keepalive. */
  private fixedListen(listen: Listen, spec: string): string {
    const nginx = this.model.listens.get(listen)!.nginx;
    return `listen ${[nginx.addressText, ...nginx.params, `so_keepalive=${spec}`].join(' ')};`;
  }

  hazard(h: Hazard): void {
    const d = h.data;
    const box = d.box;
    const name = box?.name ?? 'the load balancer';
    const idle = box ? human(box.idleMs / 1000) : '';
    const rec = box ? recommend(Math.max(2, Math.floor(box.idleMs / 1000))) : undefined;
    switch (h.code) {
      case 'keepalive-too-late':
      case 'keepalive-interval-too-long': {
        const t = d.timing!;
        if (d.listen) {
          const keepText = this.model.listens.get(d.listen)!.nginx.soKeepalive?.text ?? '';
          const inherited = t.relies.map((f) => KEEPALIVE_SYSCTLS[f]);
          const from = inherited.length > 0 ? ` (${inherited.join(', ')} from this host)` : '';
          this.add(
            'error',
            'so-keepalive-too-long',
            h.at,
            `so_keepalive=${keepText} probes an idle connection every max(${t.idle}, ${t.interval}) = ${human(t.period)}${from}, not below ${name}'s idle timeout ${idle}`,
            `a client connection idle for ${idle} (a long request waiting on ${this.waitName(d)}) is forgotten by ${name} before the first probe, and ${box!.failure}; a dead client goes unnoticed for ${human(detectionTime(t))}.`,
            this.fixedListen(d.listen, rec!.soKeepalive),
          );
          return;
        }
        const directive = this.directiveOf(d.owner, 'proxy_socket_keepalive');
        const value = this.valueAt(h.at) ?? 'on';
        this.add(
          'error',
          'upstream-keepalive-too-long',
          h.at,
          `${directive} ${value} probes every max(${t.idle}, ${t.interval}) = ${human(t.period)}${t.relies.length > 0 ? ' (the kernel defaults of this host)' : ''}, not below ${name}'s idle timeout ${idle} between nginx and its upstream`,
          `an upstream connection waiting on a slow response or idle in the pool is forgotten by ${name} before the first probe, and ${box!.failure}.`,
          // nginx takes only on|off here: the kernel's values decide the timing.
          sysctlLines(sysctlSettings(rec!, this.opts.system.interval)).join('\n'),
          value,
        );
        return;
      }
      case 'listener-without-keepalive': {
        const listen = d.listen!;
        const turnedOff = listen.soKeepalive !== undefined;
        const long = h.severity === 'error';
        this.add(
          h.severity,
          'listen-no-keepalive',
          h.at,
          `listen ${this.model.listens.get(listen)!.nginx.addressText} ${turnedOff ? 'turns keepalive off' : 'has no so_keepalive'}, facing ${name} (idle timeout ${idle})`,
          long
            ? `${this.waitName(d)} ${human(d.waitMs! / 1000)} lets a request wait longer than ${name}'s ${idle} with nothing on the client connection: reset of a long request, as ${box!.failure}.`
            : `nothing on this server waits ${idle} today (longest ${this.waitName(d)} ${human(d.waitMs! / 1000)}), but a dead client or a connection ${name} forgot is only noticed at nginx's own timeouts, and a longer timeout later breaks silently.`,
          this.fixedListen(listen, rec!.soKeepalive),
        );
        return;
      }
      case 'upstream-without-keepalive': {
        const directive = this.directiveOf(d.owner, 'proxy_socket_keepalive');
        if (!box) {
          this.add(
            'info',
            'upstream-no-keepalive',
            h.at,
            `no ${directive} toward ${this.hosts(d.owner).join(', ') || 'the upstream'}, which is not on this host; no middlebox between nginx and it was given`,
            'if a firewall, NAT or load balancer sits on that path, an upstream connection idle longer than its timeout is forgotten; say so with --upstream-lb or --chain to check it.',
            `${directive} on;`,
          );
          return;
        }
        this.add(
          'error',
          'upstream-no-keepalive',
          h.at,
          `no ${directive} toward the upstream while ${this.waitName({ ...d, waitOwner: d.owner })} ${human(d.waitMs! / 1000)} is not below ${name}'s idle timeout ${idle} on that path`,
          `a request that keeps the upstream silent for ${idle} loses its upstream connection: reset of a long request, as ${box.failure}.`,
          this.socketKeepaliveFix(directive, box),
        );
        return;
      }
      case 'upstream-pool-outlives-lb':
        this.add(
          'error',
          'upstream-pool-outlives-lb',
          h.at,
          `upstream "${d.group!.name}" keeps idle connections ${human(d.valueMs! / 1000)}, not less than ${name}'s idle timeout ${idle}, without TCP keepalive`,
          `nginx reuses a stale pooled connection that ${name} already forgot, and ${box!.failure}; nginx retries once on a reused connection, but not for POST.`,
          h.fix,
        );
        return;
      case 'keepalive-timeout-below-lb': {
        const set =
          this.valueAt(h.at) !== undefined && this.model.origins.get(d.owner!, 'keepaliveTimeoutMs');
        this.add(
          'error',
          'keepalive-timeout-below-lb',
          h.at,
          `keepalive_timeout ${set ? this.valueAt(h.at) : `${d.valueMs! / 1000}s (default)`} is not above ${name}'s idle timeout ${idle}, and ${name} pools its connections to this server`,
          `nginx closes an idle connection that ${name} still holds in its pool: ${name} reuses the stale pooled connection and the request fails with a 502.`,
          h.fix,
        );
        return;
      }
      case 'read-timeout-above-lb': {
        const directive = this.directiveOf(d.owner, 'proxy_read_timeout');
        this.add(
          'warning',
          'read-timeout-above-lb',
          h.at,
          `${directive} ${human(d.valueMs! / 1000)} lets a response take longer than ${name}'s idle timeout ${idle}`,
          `a response slower than ${idle} never reaches the client: ${box!.failure} (TCP keepalive does not count as data for an L7 proxy).`,
          `${directive} ${Math.max(1, Math.floor(box!.idleMs / 1000) - 1)}s;`,
        );
        return;
      }
      case 'keepalive-http10': {
        const location = d.owner as HttpLocation;
        const explicit = this.model.origins.get(location, 'proxyHttpVersion') !== undefined;
        this.add(
          'warning',
          'upstream-keepalive-http10',
          h.at,
          `${this.pooled(d.group!)} but this location speaks HTTP/1.0 to it (${explicit ? 'proxy_http_version 1.0' : `the default before nginx 1.29.7; ${this.seen()}`})`,
          'every upstream request closes its connection, so the pool stays empty and each request pays a new TCP (and TLS) handshake, with TIME_WAIT piling up on the upstream side.',
          'proxy_http_version 1.1;',
        );
        return;
      }
      case 'upstream-keepalive-timeout':
        this.add(h.severity, h.code, h.at, h.message, h.why, h.fix);
        return;
    }
  }

  private seen(): string {
    const v = this.opts.nginxVersion;
    return v === undefined ? 'nginx version unknown; nginx before 1.29.7 assumed' : `nginx ${v}`;
  }

  private pooled(group: HttpUpstreamGroup): string {
    const node = this.model.groups.get(group)!;
    const keepalive = node.children?.filter((c) => c.name === 'keepalive').at(-1);
    return `upstream "${group.name}" pools connections (keepalive ${keepalive?.args[0]?.value ?? ''})`;
  }

  private hosts(owner: object | undefined): string[] {
    const target =
      (owner as HttpLocation | undefined)?.proxyPass?.target ?? (owner as StreamServer)?.proxyPass;
    if (!target) return [];
    if (target.kind === 'address') return [target.address.text];
    const groups = [
      ...(this.model.config.http?.upstreams.values() ?? []),
      ...(this.model.config.stream?.upstreams.values() ?? []),
    ];
    return groups.find((g) => g.name === target.name)?.servers.map((s) => s.address.text) ?? [];
  }

  /** `proxy_socket_keepalive on;`, plus the host sysctls when the kernel's defaults probe too late. */
  private socketKeepaliveFix(directive: string, box: Box): string {
    const rec = recommend(Math.max(2, Math.floor(box.idleMs / 1000)));
    const sysLate = probePeriod(this.opts.system) * 1000 >= box.idleMs;
    const sysctls = sysctlLines(sysctlSettings(rec, this.opts.system.interval));
    return `${directive} on;${sysLate ? ` # plus ${sysctls.join(', ')} on this host` : ''}`;
  }

  /**
   * nginx-only findings, which keepwire's own configuration cannot have:
   * a listen nginx -t refuses (the seed's comma, an invalid so_keepalive) or
   * whose so_keepalive the kernel refuses at run time.
   */
  listens(): void {
    for (const [listen, { node, nginx }] of this.model.listens) {
      const box = tightest(this.opts.front.filter(isL4));
      const rec = box ? recommend(box.idleSeconds) : undefined;
      const address = node.args[0];
      if (!address || node.args.length === 0 || node === undefined) continue;
      if (nginx.commaArg !== undefined) {
        const comma = node.args[nginx.commaArg]!;
        const keepText = nginx.soKeepalive?.text;
        const spec =
          keepText === undefined
            ? rec?.soKeepalive
            : rec
              ? rec.soKeepalive
              : parseSoKeepalive(keepText).ok
                ? keepText
                : '60s:10s:6';
        this.add(
          'error',
          'listen-comma',
          { file: comma.file, line: comma.line, col: comma.col + comma.value.indexOf(',') },
          `"${comma.value}": nginx separates listen parameters with spaces, not commas`,
          `nginx -t fails with host not found in "${address.value}" of the "listen" directive, so nginx does not start (or a reload keeps the old config) and the keepalive setting never applies.`,
          `listen ${[nginx.addressText, ...nginx.params, ...(spec ? [`so_keepalive=${spec}`] : [])].join(' ')};`,
          comma.value,
        );
      }
      const keep = nginx.soKeepalive;
      if (!keep) continue;
      const arg = node.args[keep.arg]!;
      const valueCol = arg.col + keep.valueOffset;
      const parsed = keep.parsed;
      if (!parsed.ok) {
        this.add(
          'error',
          'so-keepalive-invalid',
          { file: arg.file, line: arg.line, col: valueCol + parsed.offset },
          parsed.message,
          `nginx -t refuses "${arg.value}" (invalid so_keepalive value), so this configuration cannot be loaded.`,
          this.fixedListen(listen, rec?.soKeepalive ?? '60s:10s:6'),
          arg.value,
        );
        continue;
      }
      const refused = kernelRefusal(parsed);
      if (refused) {
        this.add(
          'error',
          'so-keepalive-kernel-refuses',
          { file: arg.file, line: arg.line, col: valueCol + refused.offset(keep.text) },
          `so_keepalive ${refused.field} ${refused.value} is outside what the kernel accepts (${refused.option} ${refused.min}..${refused.max})`,
          `nginx -t accepts it, but setsockopt(${refused.option}) fails with EINVAL when the listener opens: nginx only logs an alert and the listener runs with the kernel default, probing after ${human(this.opts.system.idle)}.`,
          this.fixedListen(listen, rec?.soKeepalive ?? '60s:10s:6'),
          arg.value,
        );
      }
    }
  }

  /**
   * Before 1.29.7 nginx sends `Connection: close` upstream unless a
   * proxy_set_header replaces it; nginx's arrays are inherited only by a
   * level that sets none, so one set higher up may not reach this location.
   */
  connectionHeaders(): void {
    const version = this.opts.nginxVersion;
    if (version !== undefined && versionAtLeast(version, KEEPALIVE_DEFAULTS_VERSION)) return;
    const groups = this.model.config.http?.upstreams;
    for (const [location, { chain, pass, kind }] of this.model.locations) {
      const target = location.proxyPass?.target;
      if (!pass || kind !== 'proxy' || target?.kind !== 'group') continue;
      const group = groups?.get(target.name);
      if (!group || group.keepalive === 0) continue;
      if (location.proxySetHeaders.some((h) => h.name.toLowerCase() === 'connection')) continue;
      const dropped = this.model.origins.get(location, 'proxySetHeaders');
      const elsewhere = chain
        .slice(0, -1)
        .flatMap((c) => (c.children ?? []).filter((x) => x.name === 'proxy_set_header'))
        .find((h) => h.args[0]?.value.toLowerCase() === 'connection');
      this.add(
        'warning',
        'upstream-keepalive-connection-close',
        pass,
        `${this.pooled(group)} but requests from here carry "Connection: close" (no proxy_set_header Connection ""; ${this.seen()})${
          elsewhere && dropped
            ? `; the one at ${elsewhere.file}:${elsewhere.line} is not inherited because this level sets its own proxy_set_header (${dropped.file}:${dropped.line})`
            : ''
        }`,
        'nginx before 1.29.7 asks the upstream to close every connection, so the keep-alive pool never keeps one.',
        'proxy_set_header Connection "";',
      );
    }
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
  const model = nginxModel(
    ast.directives,
    file,
    opts.nginxVersion ? { nginxVersion: opts.nginxVersion } : {},
  );
  const legs: Legs = { front: opts.front.map(hazardBox), upstream: opts.upstream.map(hazardBox) };
  const { hazards, dependents } = keepaliveHazards(model.config, model.origins, () => legs, {
    ...opts.system,
    where: 'of this host',
  });
  const voice = new NginxVoice(model, opts);
  voice.listens();
  const skipped = (h: Hazard) => {
    // nginx -t refuses this listen: its so_keepalive-invalid finding says so, and nothing else is judged.
    if (h.data.listen && model.listens.get(h.data.listen)?.invalid) return true;
    // fastcgi, uwsgi and scgi legs are not judged (their *_socket_keepalive is rare, and was never audited).
    const kind = h.data.owner ? model.locations.get(h.data.owner as HttpLocation)?.kind : undefined;
    return (
      (kind === 'fastcgi' || kind === 'uwsgi' || kind === 'scgi') &&
      (h.code === 'upstream-without-keepalive' ||
        h.code === 'upstream-pool-outlives-lb' ||
        h.code === 'keepalive-too-late' ||
        h.code === 'keepalive-interval-too-long')
    );
  };
  for (const h of hazards) if (!skipped(h)) voice.hazard(h);
  voice.connectionHeaders();
  const order = [...ast.sources.keys()];
  const byPlace = (a: Finding, b: Finding) =>
    order.indexOf(a.evidence.file ?? '') - order.indexOf(b.evidence.file ?? '') ||
    (a.evidence.line ?? 0) - (b.evidence.line ?? 0) ||
    (a.evidence.col ?? 0) - (b.evidence.col ?? 0);
  for (const d of dependents)
    voice.dependents.push({ ...fileEvidence(d.at, voice.valueAt(d.at)), relies: d.relies });
  Object.assign(voice.timeouts, timeoutsOf(model.config));
  return {
    findings: [...findings, ...voice.findings.sort(byPlace)],
    systemDependents: voice.dependents,
    sources: ast.sources,
    timeouts: voice.timeouts,
  };
}

/** HTTP keep-alive timeouts for the chain (seconds): the shortest server one, the longest pooled upstream one. */
export function timeoutsOf(config: Config): ConfigAudit['timeouts'] {
  const out: ConfigAudit['timeouts'] = {};
  for (const s of config.http?.servers ?? [])
    out.server = Math.min(out.server ?? Number.POSITIVE_INFINITY, s.keepaliveTimeoutMs / 1000);
  for (const g of config.http?.upstreams.values() ?? []) {
    if (g.keepalive > 0) out.upstreamPool = Math.max(out.upstreamPool ?? 0, g.keepaliveTimeoutMs / 1000);
  }
  return out;
}

export type { ArgNode };
/** nginx's so_keepalive form lives with the dialect; re-exported for doctor's callers. */
export { parseNginxSoKeepalive, versionAtLeast };
