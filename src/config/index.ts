/**
 * Reading keepwire.conf: text → AST → typed model, with diagnostics.
 * `serve` consumes `config`; `check` prints `diagnostics`.
 */
import { readFileSync } from 'node:fs';
import { type Diagnostic, DiagnosticList, sortDiagnostics } from './diagnostics.js';
import { DIRECTIVE_NAMES } from './directives.js';
import type { Config } from './model.js';
import { type ConfigAst, parseText } from './parser.js';
import { validate } from './validate.js';

export type { Diagnostic, DiagnosticCode, Position, Severity } from './diagnostics.js';
export { formatDiagnostic, formatDiagnostics, printable, sortDiagnostics } from './diagnostics.js';
export { CONTEXT_LABEL, type Context, DIRECTIVES, type Directive, defaultOf, lookup } from './directives.js';
export type * from './model.js';
export type { ArgNode, ConfigAst, DirectiveNode } from './parser.js';
export { resolveNames } from './resolve.js';

export interface LoadOptions {
  /** Report unknown directives as warnings and skip them (for reading real nginx files). */
  tolerant?: boolean;
}

export interface LoadResult {
  /** Present only when there is no error; warnings may remain. Every default is filled in. */
  config?: Config;
  /** Sorted by file, line and column. */
  diagnostics: Diagnostic[];
  /** Text of every file read (main and included), for showing source lines. */
  sources: Map<string, string>;
}

/** Parses text into an AST only, with syntax diagnostics (no directive checks). */
export function parseConfigAst(text: string, file: string): { ast: ConfigAst; diagnostics: Diagnostic[] } {
  const diags = new DiagnosticList();
  const ast = parseText(text, file, diags, { knownNames: DIRECTIVE_NAMES });
  return { ast, diagnostics: sortDiagnostics(diags.items) };
}

/** Parses and validates config text; `file` names it in diagnostics and anchors relative includes. */
export function parseConfigText(text: string, file = 'keepwire.conf', options: LoadOptions = {}): LoadResult {
  const diags = new DiagnosticList();
  const ast = parseText(text, file, diags, { knownNames: DIRECTIVE_NAMES });
  const config = validate(ast, diags, options);
  const result: LoadResult = { diagnostics: sortDiagnostics(diags.items), sources: ast.sources };
  if (config && !diags.hasErrors) result.config = config;
  return result;
}

/** Reads, parses and validates a config file. An unreadable file is a `file-unreadable` error at line 0. */
export function loadConfig(path: string, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (code ?? (error as Error).message);
    return {
      diagnostics: [
        {
          severity: 'error',
          code: 'file-unreadable',
          message: `cannot read configuration file: ${reason}`,
          file: path,
          line: 0,
          col: 0,
        },
      ],
      sources: new Map(),
    };
  }
  return parseConfigText(text, path, options);
}

/**
 * A configuration `serve` can run: loadConfig, plus the one rule `serve`
 * enforces on a whole file — something to serve. `check` and `serve` both
 * load through here, so `check` never passes a file `serve` refuses.
 */
export function loadServable(path: string, options: LoadOptions = {}): LoadResult {
  const result = loadConfig(path, options);
  const config = result.config;
  if (config === undefined) return result;
  const servers = (config.stream?.servers.length ?? 0) + (config.http?.servers.length ?? 0);
  if (servers > 0) return result;
  const diagnostic: Diagnostic = {
    severity: 'error',
    code: 'missing-directive',
    message: 'nothing to serve: no stream { server { ... } } or http { server { ... } } block',
    // The whole file is at fault; its start is where an editor should land
    // (every error carries a line and column, scripts rely on it).
    file: path,
    line: 1,
    col: 1,
    hint: 'add a server block with a listen directive; examples/ has a stream and an http configuration',
  };
  return { diagnostics: sortDiagnostics([...result.diagnostics, diagnostic]), sources: result.sources };
}
