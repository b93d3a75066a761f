/**
 * keepwire's own configuration (`-c`): validated as `keepwire check` does,
 * then audited against the real load balancer with the same rules as nginx
 * files (keepwire's language is an nginx subset), in keepwire's dialect
 * (`proxy_socket_keepalive` takes a full keepalive spec).
 */
import { loadConfig } from '../config/index.js';
import type { Finding } from './findings.js';
import { fileEvidence } from './findings.js';
import { type AuditOptions, auditConfigFile, type ConfigAudit } from './nginx.js';

export function auditKeepwireConfig(file: string, opts: AuditOptions): ConfigAudit {
  const loaded = loadConfig(file);
  const findings: Finding[] = [];
  const haveLb = opts.front.length > 0 || opts.upstream.length > 0;
  for (const d of loaded.diagnostics) {
    // The config's own lb_idle_timeout hazards are replaced by the audit against the LB given here.
    if (haveLb && d.code.startsWith('hazard-')) continue;
    findings.push({
      severity: d.severity,
      code: `config-${d.code}`,
      layer: 'keepwire',
      message: d.message,
      evidence: fileEvidence(d),
      why:
        d.severity === 'error'
          ? 'keepwire serve refuses to start (or reload) with this configuration.'
          : 'keepwire check reports this as a hazard behind a load balancer.',
      fix: d.hint ?? 'see keepwire check',
    });
  }
  if (loaded.diagnostics.some((d) => d.code === 'file-unreadable')) {
    return { findings, systemDependents: [], sources: loaded.sources, timeouts: {} };
  }
  const audit = auditConfigFile(file, 'keepwire', { ...opts, dialect: 'keepwire' });
  // The validator above already refused bad syntax and bad keepalive values, with keepwire's own codes.
  const validated = new Set([
    'config-syntax',
    'listen-comma',
    'so-keepalive-invalid',
    'so-keepalive-kernel-refuses',
  ]);
  const rest = audit.findings.filter((f) => !validated.has(f.code));
  return {
    findings: [...findings, ...rest],
    systemDependents: audit.systemDependents,
    sources: loaded.sources,
    timeouts: audit.timeouts,
  };
}
