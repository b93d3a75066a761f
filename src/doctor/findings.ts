/**
 * What `keepwire doctor` reports. A finding is one hazard with the evidence
 * that shows it, the failure it leads to, and the exact line that fixes it.
 * Codes are stable: `--json` consumers and tests match on them.
 */

import type { ConfigAudit } from './nginx.js';

export type FindingSeverity = 'error' | 'warning' | 'info';

/** Where the evidence lives, in the order the report groups them. */
export type Layer = 'host' | 'nginx' | 'haproxy' | 'envoy' | 'kubernetes' | 'keepwire' | 'sockets' | 'chain';

export const LAYERS: readonly Layer[] = [
  'host',
  'nginx',
  'haproxy',
  'envoy',
  'kubernetes',
  'keepwire',
  'sockets',
  'chain',
];

export interface SocketRef {
  local: string;
  peer: string;
  pid?: number;
  fd?: number;
  process?: string;
}

export interface Evidence {
  /** Human form: `file:line:col`, a sysctl path, or a socket 4-tuple with its pid. */
  where: string;
  file?: string;
  line?: number;
  col?: number;
  /** A /proc/sys path. */
  path?: string;
  socket?: SocketRef;
  /** The offending text or value as found. */
  value?: string;
}

/**
 * A place that takes keepalive values from the kernel's defaults, and which
 * ones: `so_keepalive=60s::` relies on the interval and count, not the idle.
 */
export interface Dependent extends Evidence {
  relies: readonly ('idle' | 'interval' | 'count')[];
}

export interface Finding {
  severity: FindingSeverity;
  code: string;
  layer: Layer;
  /** What is wrong, in one line. */
  message: string;
  evidence: Evidence;
  /** The failure it causes, in one sentence. */
  why: string;
  /** The exact line to write (nginx directive, sysctl line, Node option). */
  fix: string;
}

const RANK: Record<FindingSeverity, number> = { info: 0, warning: 1, error: 2 };

export function atLeast(severity: FindingSeverity, threshold: FindingSeverity): boolean {
  return RANK[severity] >= RANK[threshold];
}

export function bySeverity(a: Finding, b: Finding): number {
  return RANK[b.severity] - RANK[a.severity];
}

/**
 * What a reader of another tool's files (nginx, HAProxy, Envoy, Kubernetes) builds
 * up: its findings at file:line:col in one layer, the callers that depend on
 * the chain, and the timeouts it read (the `ConfigAudit` each reader returns).
 */
export abstract class FileAuditor {
  readonly findings: Finding[] = [];
  readonly dependents: Dependent[] = [];
  readonly timeouts: ConfigAudit['timeouts'] = {};

  constructor(private readonly layer: Layer) {}

  protected add(
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
      evidence: fileEvidence(at, value ?? this.valueAt(at)),
      why,
      fix,
    });
  }

  /** The text at a place, for a finding that names none (nginx: the directive's value as written). */
  valueAt(_at: { file: string; line: number; col: number }): string | undefined {
    return undefined;
  }
}

export function fileEvidence(at: { file: string; line: number; col: number }, value?: string): Evidence {
  const e: Evidence = { where: `${at.file}:${at.line}:${at.col}`, file: at.file, line: at.line, col: at.col };
  if (value !== undefined) e.value = value;
  return e;
}

/** `2h11m15s` rather than `7875s`: durations in findings are read by people. */
export function human(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'forever';
  let s = Math.round(seconds);
  if (s === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join('');
}
