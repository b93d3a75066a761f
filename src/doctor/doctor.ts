/**
 * `keepwire doctor`: every layer that decides whether an idle connection
 * survives the middleboxes in front, read where it lives, into one list of
 * findings.
 */
import { spawnSync } from 'node:child_process';
import { chainFindings, type Hop, type NginxTimeouts, parseChain, readChainArg } from './chain.js';
import { auditEnvoy } from './envoy.js';
import { bySeverity, type Dependent, type Finding } from './findings.js';
import { auditHaproxy } from './haproxy.js';
import { type HostState, hostFindings, readHost } from './host.js';
import { auditKeepwireConfig } from './keepwire-config.js';
import { auditManifests } from './kubernetes.js';
import { auditNginx, type ConfigAudit } from './nginx.js';
import { isL4, type Middlebox, tightest } from './profiles.js';
import {
  type LiveSocket,
  listSockets,
  type ProcessSocket,
  processFindings,
  processName,
  readProcessSockets,
  socketFindings,
} from './sockets.js';

export interface DoctorOptions {
  /** Middleboxes in front (client side), tightest first does not matter. */
  front: Middlebox[];
  /** Middleboxes between the server and its upstreams. */
  upstream: Middlebox[];
  nginx: string[];
  /** `--haproxy` files. */
  haproxy?: string[];
  /** `--envoy` bootstrap files (YAML or JSON). */
  envoy?: string[];
  /** `--k8s-manifest` files (multi-document YAML). */
  k8s?: string[];
  keepwireConfigs: string[];
  /** `--chain` text or file. */
  chain?: string;
  pid?: number;
  /** Read live sockets host-wide (ss). */
  sockets: boolean;
  nginxVersion?: string;
}

export interface DoctorReport {
  /** Set when this run audits another network namespace (`--netns`, doctor/netns.ts). */
  netns?: string;
  lb: { front: Middlebox[]; upstream: Middlebox[] };
  host: HostState;
  nginxVersion?: string;
  sockets?: LiveSocket[];
  process?: { pid: number; name?: string; sockets: ProcessSocket[]; error?: string };
  chain?: Hop[];
  findings: Finding[];
  summary: { error: number; warning: number; info: number };
  /** Text of config files read, for source lines in the human report. */
  sources: Map<string, string>;
}

/** `nginx -v` prints `nginx version: nginx/1.22.1` on stderr. */
export function detectNginxVersion(): string | undefined {
  const r = spawnSync('nginx', ['-v'], { encoding: 'utf8', timeout: 3000 });
  if (r.error) return undefined;
  return /nginx\/([0-9.]+)/.exec(`${r.stderr}${r.stdout}`)?.[1];
}

export async function runDoctor(opts: DoctorOptions): Promise<DoctorReport> {
  const host = readHost();
  const findings: Finding[] = [];
  const dependents: Dependent[] = [];
  const sources = new Map<string, string>();
  const chainHops = opts.chain !== undefined ? readChainArg(opts.chain) : undefined;
  // Middleboxes placed after nginx in the chain are on its upstream path.
  let upstream = [...opts.upstream];
  if (chainHops) {
    // Only the middleboxes matter here; the hops named after a configuration get its timeouts below.
    const placeholder = { keepaliveTimeout: 0, source: '' };
    const hops = parseChain(chainHops, undefined, {
      ...(opts.haproxy?.length ? { haproxy: placeholder } : {}),
      ...(opts.envoy?.length ? { envoy: placeholder } : {}),
      ...(opts.k8s?.length ? { k8s: placeholder } : {}),
    });
    const at = hops.findIndex((h) => h.kind === 'endpoint' && h.name === 'nginx');
    if (at !== -1) {
      for (const h of hops.slice(at + 1)) if (h.kind === 'middlebox') upstream.push(h.box);
    }
    upstream = [...new Map(upstream.map((b) => [`${b.name}:${b.idleSeconds}`, b])).values()];
  }
  const auditOpts = {
    front: opts.front,
    upstream,
    system: host.keepalive,
    ...(opts.nginxVersion !== undefined ? { nginxVersion: opts.nginxVersion } : {}),
  };
  const audits: ConfigAudit[] = [];
  for (const file of opts.nginx) audits.push(auditNginx(file, auditOpts));
  for (const file of opts.keepwireConfigs) audits.push(auditKeepwireConfig(file, auditOpts));
  const others: { name: string; file: string; audit: ConfigAudit }[] = [];
  for (const file of opts.haproxy ?? [])
    others.push({ name: 'haproxy', file, audit: auditHaproxy(file, auditOpts) });
  for (const file of opts.envoy ?? [])
    others.push({ name: 'envoy', file, audit: auditEnvoy(file, auditOpts) });
  for (const file of opts.k8s ?? [])
    others.push({ name: 'k8s', file, audit: auditManifests(file, auditOpts) });
  for (const a of [...audits, ...others.map((o) => o.audit)]) {
    findings.push(...a.findings);
    dependents.push(...a.systemDependents);
    for (const [k, v] of a.sources) sources.set(k, v);
  }
  // TCP keepalive advice (host sysctls, socket options) only for boxes it can
  // hold open: an L7 proxy in front counts data, and its fix is the HTTP
  // keep-alive timeout, which the configuration audits give.
  const lb = tightest(opts.front.filter(isL4));
  const report: DoctorReport = {
    lb: { front: opts.front, upstream },
    host,
    findings,
    summary: { error: 0, warning: 0, info: 0 },
    sources,
  };
  if (opts.nginxVersion !== undefined) report.nginxVersion = opts.nginxVersion;
  const netns = process.env.KEEPWIRE_DOCTOR_NETNS;
  if (netns) report.netns = netns;

  if (opts.pid !== undefined) {
    const name = processName(opts.pid);
    const proc: NonNullable<DoctorReport['process']> = { pid: opts.pid, sockets: [] };
    if (name !== undefined) proc.name = name;
    try {
      proc.sockets = readProcessSockets(opts.pid);
      findings.push(...processFindings(opts.pid, proc.sockets, lb, name));
      for (const s of proc.sockets) {
        if (!s.keepalive) continue;
        // A value equal to the host's is taken to come from it.
        const relies: Dependent['relies'][number][] = [];
        if (s.idle === host.keepalive.idle) relies.push('idle');
        if (s.interval === host.keepalive.interval) relies.push('interval');
        if (relies.length > 0)
          dependents.push({ where: `pid ${opts.pid} fd ${s.fd} ${s.local} -> ${s.peer}`, relies });
      }
    } catch (error) {
      const e = error as Error & { code?: string };
      if (e.code === 'ESRCH') throw error;
      proc.error = e.message;
      findings.push({
        severity: 'error',
        code: 'pid-access-denied',
        layer: 'sockets',
        message: e.message,
        evidence: { where: `/proc/${opts.pid}/fd`, path: `/proc/${opts.pid}/fd`, value: e.code ?? '' },
        why: 'without ptrace rights over the process its sockets cannot be duplicated, so their keepalive settings were not checked.',
        fix: `sudo keepwire doctor --pid ${opts.pid} ...`,
      });
    }
    report.process = proc;
  }
  if (opts.sockets) {
    report.sockets = await listSockets();
    findings.push(...socketFindings(report.sockets, lb));
  }
  findings.unshift(...hostFindings(host, lb, dependents));
  if (chainHops) {
    // An `haproxy`, `envoy` or `k8s` hop takes the timeouts its configuration says.
    const read: Record<string, NginxTimeouts> = {};
    for (const o of others) {
      const t = o.audit.timeouts;
      if (t.server === undefined || read[o.name]) continue;
      read[o.name] = {
        keepaliveTimeout: t.server,
        ...(t.upstreamPool !== undefined ? { upstreamKeepaliveTimeout: t.upstreamPool } : {}),
        source: `from ${o.file}: client keep-alive ${t.server}s${t.upstreamPool !== undefined ? `, upstream pool idle ${t.upstreamPool}s` : ''}`,
      };
    }
    const nginxTimes = audits.find((a) => a.timeouts.server !== undefined)?.timeouts;
    const hops = parseChain(
      chainHops,
      nginxTimes?.server !== undefined
        ? {
            keepaliveTimeout: nginxTimes.server,
            ...(nginxTimes.upstreamPool !== undefined
              ? { upstreamKeepaliveTimeout: nginxTimes.upstreamPool }
              : {}),
            source: `from ${opts.nginx[0] ?? opts.keepwireConfigs[0]}: keepalive_timeout ${nginxTimes.server}s${
              nginxTimes.upstreamPool !== undefined
                ? `, upstream keepalive_timeout ${nginxTimes.upstreamPool}s`
                : ', no upstream pool'
            }`,
          }
        : undefined,
      read,
    );
    report.chain = hops;
    findings.push(...chainFindings(hops, chainHops));
  }
  report.findings = findings.sort(bySeverity);
  for (const f of findings) report.summary[f.severity]++;
  return report;
}
