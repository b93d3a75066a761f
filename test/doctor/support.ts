import path from 'node:path';
import type { Finding } from '../../src/doctor/findings.js';
import { ROOT } from '../support.js';

export { MAIN, ROOT } from '../support.js';
export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'nginx');

/** A stock Linux host: what so_keepalive=on and empty fields inherit. */
export const STOCK = { idle: 7200, interval: 75, count: 9 };

/** `severity code file:line:col`, the part of a finding a test pins down exactly. */
export function brief(findings: readonly Finding[]): string[] {
  return findings.map((f) => `${f.severity} ${f.code} ${f.evidence.where}`);
}
