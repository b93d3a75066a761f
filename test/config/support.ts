import assert from 'node:assert/strict';
import { type Diagnostic, type LoadResult, parseConfigText } from '../../src/config/index.js';

export { ROOT } from '../support.js';

export function check(text: string, file = 'test.conf'): LoadResult {
  return parseConfigText(text, file);
}

export interface Expected {
  code: Diagnostic['code'];
  line: number;
  col: number;
  /** Substrings the message must contain. */
  message?: string[];
  hint?: string;
  severity?: Diagnostic['severity'];
}

/** Asserts the first diagnostic with `code`, and that it sits exactly where expected. */
export function expectDiagnostic(result: LoadResult, want: Expected): Diagnostic {
  const found = result.diagnostics.find((d) => d.code === want.code);
  assert.ok(found, `expected ${want.code}, got ${JSON.stringify(result.diagnostics, null, 1)}`);
  assert.deepEqual(
    { line: found.line, col: found.col, severity: found.severity },
    { line: want.line, col: want.col, severity: want.severity ?? 'error' },
    `position of ${want.code}: ${found.message}`,
  );
  for (const part of want.message ?? [])
    assert.ok(found.message.includes(part), `"${found.message}" lacks "${part}"`);
  if (want.hint !== undefined)
    assert.ok(found.hint?.includes(want.hint), `hint "${found.hint}" lacks "${want.hint}"`);
  return found;
}

export function expectClean(result: LoadResult): void {
  assert.deepEqual(result.diagnostics, []);
  assert.ok(result.config, 'a valid config yields a model');
}
