/**
 * Diagnostics shared by `check`, `serve` and (later) `doctor`. Codes are
 * stable: tests, `--json` consumers and documentation refer to them.
 */

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  code: DiagnosticCode;
  message: string;
  file: string;
  /** 1-based; 0 only when the diagnostic is about a whole file that could not be read. */
  line: number;
  /** 1-based; 0 only together with line 0. */
  col: number;
  hint?: string;
}

export type DiagnosticCode =
  // reading files
  | 'file-unreadable'
  | 'include-not-found'
  | 'include-cycle'
  // lexical and block structure
  | 'unterminated-string'
  | 'unexpected-token'
  | 'missing-semicolon'
  | 'unbalanced-brace'
  // directives
  | 'unknown-directive'
  | 'wrong-context'
  | 'wrong-arity'
  | 'block-expected'
  | 'block-unexpected'
  | 'duplicate-directive'
  | 'bad-value'
  | 'comma-separator'
  | 'unsupported'
  // cross-directive rules
  | 'duplicate-listen'
  | 'duplicate-upstream'
  | 'duplicate-location'
  | 'unknown-upstream'
  | 'missing-directive'
  | 'conflict'
  // hazards: configurations that are valid but misbehave behind a load balancer
  | 'hazard-keepalive-too-late'
  | 'hazard-keepalive-interval-too-long'
  | 'hazard-listener-without-keepalive'
  | 'hazard-upstream-without-keepalive'
  | 'hazard-keepalive-timeout-below-lb'
  | 'hazard-upstream-keepalive-timeout'
  | 'hazard-keepalive-http10'
  | 'hazard-upstream-pool-outlives-lb'
  | 'hazard-read-timeout-above-lb';

/** A position in a config file. */
export interface Position {
  file: string;
  line: number;
  col: number;
}

/** Collects diagnostics in the order they are found. */
export class DiagnosticList {
  readonly items: Diagnostic[] = [];

  error(code: DiagnosticCode, at: Position, message: string, hint?: string): void {
    this.push('error', code, at, message, hint);
  }

  warning(code: DiagnosticCode, at: Position, message: string, hint?: string): void {
    this.push('warning', code, at, message, hint);
  }

  push(severity: Severity, code: DiagnosticCode, at: Position, message: string, hint?: string): void {
    const d: Diagnostic = { severity, code, message, file: at.file, line: at.line, col: at.col };
    if (hint !== undefined) d.hint = hint;
    this.items.push(d);
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}

/** Orders diagnostics by file, line and column, keeping discovery order for ties. */
export function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  return list
    .map((d, i) => ({ d, i }))
    .sort(
      (a, b) =>
        (a.d.file < b.d.file ? -1 : a.d.file > b.d.file ? 1 : 0) ||
        a.d.line - b.d.line ||
        a.d.col - b.d.col ||
        a.i - b.i,
    )
    .map(({ d }) => d);
}

/**
 * `FILE:LINE:COL: severity: message`, the format compilers and `nginx -t` use
 * so editors can jump to it, then the offending source line with a caret and
 * the hint.
 */
export function formatDiagnostic(d: Diagnostic, source?: string): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
  const lines = [`${where}: ${d.severity}: ${d.message}`];
  const text = source?.split(/\r?\n/)[d.line - 1];
  if (text !== undefined && d.line > 0) {
    const gutter = String(d.line);
    lines.push(`  ${gutter} | ${text.replace(/\t/g, ' ')}`);
    lines.push(`  ${' '.repeat(gutter.length)} | ${' '.repeat(Math.max(0, d.col - 1))}^`);
  }
  if (d.hint !== undefined) lines.push(`  hint: ${d.hint}`);
  return lines.join('\n');
}
