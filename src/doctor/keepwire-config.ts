/**
 * keepwire's own configuration (`-c`): validated as `keepwire check` does,
 * then its keepalive hazards found by the one hazard engine over the model
 * (config/hazards.ts) that `check` runs: here against the load balancers
 * given to doctor (profiles with their expiry and pooling) and this host's
 * kernel defaults, or, with none given, against the file's own
 * lb_idle_timeout exactly as `check`. So `check` and `doctor -c` cannot
 * disagree on the same file.
 */

import { keepaliveHazards, type Legs, lbIdleLegs } from '../config/hazards.js';
import { loadConfig } from '../config/index.js';
import { originsOf } from '../config/validate.js';
import type { Dependent, Finding } from './findings.js';
import { fileEvidence } from './findings.js';
import { type AuditOptions, type ConfigAudit, timeoutsOf } from './nginx.js';
import { hazardBox } from './profiles.js';

export function auditKeepwireConfig(file: string, opts: AuditOptions): ConfigAudit {
  const loaded = loadConfig(file);
  const findings: Finding[] = [];
  for (const d of loaded.diagnostics) {
    // Hazards come from the engine below, against the load balancers given here.
    if (d.code.startsWith('hazard-')) continue;
    findings.push({
      severity: d.severity,
      code: `config-${d.code}`,
      layer: 'keepwire',
      message: d.message,
      evidence: fileEvidence(d),
      why:
        d.severity === 'error'
          ? 'keepwire serve refuses to start (or reload) with this configuration.'
          : 'keepwire check reports this.',
      fix: d.hint ?? 'see keepwire check',
    });
  }
  const config = loaded.config;
  if (!config) return { findings, systemDependents: [], sources: loaded.sources, timeouts: {} };
  const given = opts.front.length > 0 || opts.upstream.length > 0;
  const legs: Legs = { front: opts.front.map(hazardBox), upstream: opts.upstream.map(hazardBox) };
  const { hazards, dependents } = keepaliveHazards(
    config,
    originsOf(config),
    given ? () => legs : lbIdleLegs,
    {
      ...opts.system,
      where: 'of this host',
    },
  );
  for (const h of hazards) {
    findings.push({
      severity: h.severity,
      code: `hazard-${h.code}`,
      layer: 'keepwire',
      message: h.message,
      evidence: fileEvidence(h.at),
      why: h.why,
      fix: h.fix,
    });
  }
  const systemDependents: Dependent[] = dependents.map((d) => ({ ...fileEvidence(d.at), relies: d.relies }));
  return { findings, systemDependents, sources: loaded.sources, timeouts: timeoutsOf(config) };
}
