/**
 * `check` and `doctor -c` run one hazard engine over the model
 * (config/hazards.ts), so on the same file with the same load balancer they
 * report the same hazards at the same places. Run over keepwire's examples,
 * each as written and with load balancer idle timeouts that make every leg
 * matter (short, at the stock 75 s interval, long).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { auditKeepwireConfig } from '../../src/doctor/keepwire-config.js';
import { tempDir } from '../support.js';
import { ROOT, STOCK } from './support.js';

const dir = tempDir('keepwire-agree-');
const EXAMPLES = path.join(ROOT, 'examples');

/** The example with its main-level lb_idle_timeout set to `idle` (or as written when undefined). */
function variant(name: string, idle: string | undefined): string {
  const text = readFileSync(path.join(EXAMPLES, name), 'utf8');
  if (idle === undefined) return path.join(EXAMPLES, name);
  const line = `lb_idle_timeout ${idle};`;
  const out = /^lb_idle_timeout [^;]*;/m.test(text)
    ? text.replace(/^lb_idle_timeout [^;]*;/m, line)
    : `${line}\n${text}`;
  const file = path.join(dir, `${idle}-${name}`);
  writeFileSync(file, out);
  return file;
}

function checkHazards(file: string): string[] {
  return loadConfig(file)
    .diagnostics.filter((d) => d.code.startsWith('hazard-'))
    .map((d) => `${d.code} ${d.line}:${d.col}`)
    .sort();
}

function doctorHazards(file: string): string[] {
  return auditKeepwireConfig(file, { front: [], upstream: [], system: STOCK })
    .findings.filter((f) => f.severity !== 'info' && f.code.startsWith('hazard-'))
    .map((f) => `${f.code} ${f.evidence.line}:${f.evidence.col}`)
    .sort();
}

describe('check and doctor -c agree', () => {
  const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith('.conf'));

  it('the corpus is there', () => {
    assert.ok(examples.length >= 3, `examples: ${examples.join(', ')}`);
  });

  for (const name of examples) {
    for (const idle of [undefined, '10s', '60s', '75s', '350s']) {
      it(`${name}${idle === undefined ? '' : ` with lb_idle_timeout ${idle}`}`, () => {
        const file = variant(name, idle);
        const fromCheck = checkHazards(file);
        assert.deepEqual(doctorHazards(file), fromCheck);
        // Not vacuous: a 10 s load balancer finds something in every example.
        if (idle === '10s') assert.notDeepEqual(fromCheck, [], `${name}: no hazard behind a 10 s LB`);
      });
    }
  }
});
