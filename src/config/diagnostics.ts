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
  // the configuration against this host
  | 'host-not-found'
  // TLS files (config/certificates.ts) and settings
  | 'certificate-unreadable'
  | 'certificate-invalid'
  | 'certificate-expired'
  | 'certificate-expiring'
  | 'key-mismatch'
  | 'key-readable-by-others'
  | 'tls-verify-off'
  | 'certificate-from-default'
  // hazards: configurations that are valid but misbehave behind a load balancer
  | 'grpc-ping-policy'
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
    // Messages quote the file's own words, which may be any bytes: escaped
    // here, so neither the terminal nor a --json consumer gets raw controls.
    const d: Diagnostic = {
      severity,
      code,
      message: printable(message),
      file: at.file,
      line: at.line,
      col: at.col,
    };
    if (hint !== undefined) d.hint = printable(hint);
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

// C0 and C1 controls, DEL, line and paragraph separators and the bidi
// overrides ("Trojan Source"): anything that moves the cursor, rings, sends
// a terminal escape sequence or reorders what the reader sees.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its purpose
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character written as `\xNN` or `\u{NNNN}`, so it is safe on a terminal. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}

/** The widest source excerpt shown under a diagnostic; a longer line is cut around the caret. */
const EXCERPT_WIDTH = 120;

/**
 * `FILE:LINE:COL: severity: message`, the format compilers and `nginx -t` use
 * so editors can jump to it, then the offending source line with a caret and
 * the hint. Control characters of the file are escaped, never echoed.
 */
export function formatDiagnostic(d: Diagnostic, source?: string): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
  const lines = [`${printable(where)}: ${d.severity}: ${printable(d.message)}`];
  const text = source?.split(/\r?\n/)[d.line - 1];
  if (text !== undefined && d.line > 0) {
    const gutter = String(d.line);
    const before = printable(text.slice(0, Math.max(0, d.col - 1)).replace(/\t/g, ' '));
    let shown = printable(text.replace(/\t/g, ' '));
    let caret = before.length;
    if (shown.length > EXCERPT_WIDTH) {
      const start = Math.max(0, Math.min(caret - EXCERPT_WIDTH / 2, shown.length - EXCERPT_WIDTH));
      const head = start > 0 ? '…' : '';
      const tail = start + EXCERPT_WIDTH < shown.length ? '…' : '';
      shown = `${head}${shown.slice(start, start + EXCERPT_WIDTH)}${tail}`;
      caret = caret - start + head.length;
    }
    lines.push(`  ${gutter} | ${shown}`);
    lines.push(`  ${' '.repeat(gutter.length)} | ${' '.repeat(caret)}^`);
  }
  if (d.hint !== undefined) lines.push(`  hint: ${printable(d.hint)}`);
  return lines.join('\n');
}

/** How many diagnostics a terminal gets before the rest are only counted (nginx stops at the first). */
export const SHOWN_DIAGNOSTICS = 20;

/**
 * Diagnostics for a person: the first `limit` in file order, then one line
 * counting the rest, so a binary file given as a config is a screenful, not
 * thousands of lines.
 */
export function formatDiagnostics(
  list: readonly Diagnostic[],
  sourceOf: (file: string) => string | undefined,
  limit = SHOWN_DIAGNOSTICS,
): string {
  const sorted = sortDiagnostics(list);
  const out = sorted.slice(0, limit).map((d) => `${formatDiagnostic(d, sourceOf(d.file))}\n`);
  const rest = sorted.slice(limit);
  if (rest.length > 0) {
    const errors = rest.filter((d) => d.severity === 'error').length;
    const warnings = rest.length - errors;
    const parts = [
      errors > 0 ? `${errors} more error${errors === 1 ? '' : 's'}` : '',
      warnings > 0 ? `${warnings} more warning${warnings === 1 ? '' : 's'}` : '',
    ].filter(Boolean);
    out.push(`... ${parts.join(' and ')} not shown (check --json lists them all)\n`);
  }
  return out.join('');
}
