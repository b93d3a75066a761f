/**
 * The human report (grouped by layer, most severe first, with the source
 * line under file findings and a summary line) and the JSON document for CI.
 */
import type { DoctorReport } from './doctor.js';
import { atLeast, type Finding, type FindingSeverity, human, LAYERS, type Layer } from './findings.js';
import { profileList } from './profiles.js';

const LAYER_TITLE: Record<Layer, string> = {
  host: 'host (kernel settings of this network namespace)',
  nginx: 'nginx configuration',
  haproxy: 'HAProxy configuration',
  envoy: 'Envoy configuration',
  kubernetes: 'Kubernetes manifests',
  keepwire: 'keepwire configuration',
  sockets: 'live sockets',
  chain: 'timeout chain',
};

export function failed(report: DoctorReport, failOn: FindingSeverity): boolean {
  return report.findings.some((f) => atLeast(f.severity, failOn));
}

export function summaryLine(report: DoctorReport, failOn: FindingSeverity): string {
  const { error, warning, info } = report.summary;
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  const verdict = failed(report, failOn) ? `FAIL (--fail-on ${failOn})` : 'ok';
  return `keepwire doctor: ${plural(error, 'error')}, ${plural(warning, 'warning')}, ${info} info: ${verdict}`;
}

function sourceLines(f: Finding, sources: Map<string, string>): string[] {
  const e = f.evidence;
  if (e.file === undefined || e.line === undefined || e.col === undefined || e.line < 1) return [];
  const text = sources.get(e.file)?.split(/\r?\n/)[e.line - 1];
  if (text === undefined) return [];
  const gutter = String(e.line);
  return [
    `      ${gutter} | ${text.replace(/\t/g, ' ')}`,
    `      ${' '.repeat(gutter.length)} | ${' '.repeat(Math.max(0, e.col - 1))}^`,
  ];
}

function renderFinding(f: Finding, sources: Map<string, string>): string[] {
  return [
    `  ${f.severity.padEnd(7)} ${f.code}  ${f.evidence.where}`,
    `      ${f.message}`,
    ...sourceLines(f, sources),
    `      why: ${f.why}`,
    // A fix of several lines (sysctls) is printed one per line, aligned.
    `      fix: ${f.fix.split('\n').join('\n           ')}`,
  ];
}

function socketTable(report: DoctorReport): string[] {
  const lines: string[] = [];
  if (report.process) {
    const p = report.process;
    lines.push(
      `  pid ${p.pid}${p.name ? ` (${p.name})` : ''}: ${p.error ? `not readable: ${p.error}` : `${p.sockets.length} established TCP socket(s)`}`,
    );
    for (const s of p.sockets) {
      const ka = s.keepalive ? `keepalive ${s.idle}s/${s.interval}s/${s.count}` : 'keepalive off';
      lines.push(
        `    fd ${String(s.fd).padEnd(4)} ${s.local} -> ${s.peer}  ${ka}  user_timeout ${s.userTimeout}ms  idle ${human(s.idleMs / 1000)}`,
      );
    }
  }
  if (report.sockets) {
    const withKa = report.sockets.filter((s) => s.keepalive).length;
    lines.push(
      `  host-wide: ${report.sockets.length} established TCP socket(s), ${withKa} with a keepalive timer`,
    );
    const shown = report.sockets.slice(0, 40);
    for (const s of shown) {
      const owner = s.owners[0] ? ` ${s.owners[0].process}[${s.owners[0].pid}] fd ${s.owners[0].fd}` : '';
      const timer =
        s.timer?.kind === 'keepalive'
          ? `keepalive, next probe in ${human(s.timer.remainingMs / 1000)}`
          : s.timer
            ? `timer ${s.timer.kind}`
            : 'no keepalive';
      const idle = s.idleMs === undefined ? '' : `  idle ${human(s.idleMs / 1000)}`;
      lines.push(`    ${s.local} -> ${s.peer}${owner}  ${timer}${idle}`);
    }
    if (report.sockets.length > shown.length)
      lines.push(`    ... ${report.sockets.length - shown.length} more (--json lists all)`);
  }
  return lines;
}

export function renderReport(report: DoctorReport, failOn: FindingSeverity): string {
  const out: string[] = [];
  const front = report.lb.front
    .map((b) => `${b.name} (idle ${human(b.idleSeconds)}, ${b.expiry})`)
    .join(', ');
  const up = report.lb.upstream.map((b) => `${b.name} (idle ${human(b.idleSeconds)})`).join(', ');
  out.push(
    `keepwire doctor: in front: ${front || 'no load balancer given (--lb, --lb-idle)'}${up ? `; toward upstreams: ${up}` : ''}`,
  );
  if (report.netns) out.push(`audited inside ${report.netns}`);
  const k = report.host.keepalive;
  const ct = report.host.conntrackEstablished;
  for (const layer of LAYERS) {
    const findings = report.findings.filter((f) => f.layer === layer);
    const extra: string[] = [];
    if (layer === 'host') {
      extra.push(
        `  tcp_keepalive_time ${k.idle}s, tcp_keepalive_intvl ${k.interval}s, tcp_keepalive_probes ${k.count}${ct === undefined ? '' : `; conntrack established ${ct}s`}`,
      );
    }
    if (layer === 'sockets') extra.push(...socketTable(report));
    if (layer === 'chain' && report.chain) {
      extra.push(
        `  ${report.chain
          .map((h) =>
            h.kind === 'middlebox'
              ? `${h.box.name} ${h.box.idleSeconds}s`
              : `${h.name} ${h.calleeIdle}s${h.callerIdle !== undefined && h.callerIdle !== h.calleeIdle ? `/${h.callerIdle}s` : ''}`,
          )
          .join(' -> ')}`,
      );
    }
    if (findings.length === 0 && extra.length === 0) continue;
    out.push('', `${LAYER_TITLE[layer]}:`, ...extra);
    for (const f of findings) out.push(...renderFinding(f, report.sources));
    if (findings.length === 0) out.push('  no findings');
  }
  out.push('', summaryLine(report, failOn));
  return `${out.join('\n')}\n`;
}

/** The JSON document: everything but the source texts. */
export function reportJson(report: DoctorReport, failOn: FindingSeverity): string {
  const { sources: _sources, ...rest } = report;
  return `${JSON.stringify({ ...rest, failOn, failed: failed(report, failOn) }, null, 2)}\n`;
}

/** `doctor --lb list`: one line per profile (name, idle timeout, expiry, source), the note under it. */
export function renderProfiles(): string {
  const rows = profileList();
  const width = Math.max(...rows.map((p) => p.name.length));
  const lines = rows.map((p) => {
    const expiry = p.status ? `${p.expiry} ${p.status}` : p.expiry;
    const head = `${p.name.padEnd(width)}  ${human(p.idleSeconds).padEnd(8)} ${expiry.padEnd(14)} ${p.pools ? 'pools ' : '      '}${p.source ?? ''}${p.verified === false ? ' (not verified, see docs/load-balancers.md)' : ''}`;
    return `${head}\n${' '.repeat(width + 2)}${p.note}`;
  });
  return `${lines.join('\n')}\nOverride a profile's timeout with --lb NAME=T; anything else with --lb-idle T.\n`;
}

export function profilesJson(): string {
  return `${JSON.stringify(
    profileList().map((p) => ({
      name: p.name,
      idleSeconds: p.idleSeconds,
      expiry: p.expiry,
      ...(p.status ? { status: p.status } : {}),
      pools: p.pools,
      source: p.source ?? null,
      verified: p.verified ?? false,
      note: p.note,
    })),
    null,
    2,
  )}\n`;
}
