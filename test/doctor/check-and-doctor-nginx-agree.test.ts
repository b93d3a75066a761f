/**
 * `check` and `doctor --nginx` on the same files: keepwire's examples and
 * the nginx corpus (test/fixtures/nginx), read by check (tolerant of nginx's
 * other directives) and by doctor in nginx's dialect, against the same load
 * balancer (lb_idle_timeout's reading: L4, pooling, on both legs). Where a
 * file is valid for both, they find the same keepalive hazards at the same
 * places. Codes differ by name only (doctor keeps its published codes);
 * findings one side cannot make are left out, each for the reason given.
 */
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { auditNginx } from '../../src/doctor/nginx.js';
import type { Middlebox } from '../../src/doctor/profiles.js';
import { tempDir } from '../support.js';
import { FIXTURES, ROOT, STOCK } from './support.js';

const dir = tempDir('keepwire-agree-nginx-');

/** doctor --nginx code → check's hazard code (the same rule under its doctor name). */
const SAME: Record<string, string> = {
  'so-keepalive-too-long': 'keepalive-late',
  'upstream-keepalive-too-long': 'keepalive-late',
  'listen-no-keepalive': 'listener-without-keepalive',
  'upstream-no-keepalive': 'upstream-without-keepalive',
  'keepalive-timeout-below-lb': 'keepalive-timeout-below-lb',
  'upstream-pool-outlives-lb': 'upstream-pool-outlives-lb',
  'read-timeout-above-lb': 'read-timeout-above-lb',
  'upstream-keepalive-http10': 'keepalive-http10',
};

/** check's two timing codes are doctor's one (which probe comes too late is in the message). */
function checkCode(code: string): string {
  return code === 'keepalive-too-late' || code === 'keepalive-interval-too-long' ? 'keepalive-late' : code;
}

/**
 * A copy of the file's directory (its includes resolve alike) with
 * `lb_idle_timeout idle;` (check's load balancer) in front of the file's
 * first line, so every line and column stays where it was.
 */
function withLb(file: string, idle: number): string {
  const copy = path.join(dir, `${idle}-${path.basename(path.dirname(file))}`);
  cpSync(path.dirname(file), copy, { recursive: true });
  const out = path.join(copy, path.basename(file));
  const text = readFileSync(out, 'utf8').replace(/^lb_idle_timeout ([^;]*);/m, (m) => ' '.repeat(m.length));
  writeFileSync(out, `lb_idle_timeout ${idle}s; ${text}`);
  return out;
}

/**
 * check's hazards; a line check refuses (nginx -t refuses most of them too:
 * the seed's comma, so_keepalive=::) is blanked in both copies first, so
 * the rest of the file is compared. Undefined when check still refuses it.
 */
function fromCheck(file: string): string[] | undefined {
  let loaded = loadConfig(file, { tolerant: true });
  if (!loaded.config) {
    const bad = loaded.diagnostics.filter((d) => d.severity === 'error' && d.line > 0);
    for (const name of new Set(bad.map((d) => d.file))) {
      const lines = readFileSync(name, 'utf8').split('\n');
      for (const d of bad) if (d.file === name) lines[d.line - 1] = '';
      writeFileSync(name, lines.join('\n'));
    }
    loaded = loadConfig(file, { tolerant: true });
    if (!loaded.config) return undefined;
  }
  return (
    loaded.diagnostics
      .filter((d) => d.code.startsWith('hazard-'))
      .map((d) => `${checkCode(d.code.slice('hazard-'.length))} ${d.line}:${d.col}`)
      // Pool against the upstream server's own keep-alive timeout: doctor cannot know an nginx upstream's.
      .filter((s) => !s.startsWith('upstream-keepalive-timeout'))
      .sort()
  );
}

function fromDoctor(file: string, idle: number): string[] {
  const lb: Middlebox = { name: 'lb', idleSeconds: idle, expiry: 'rst', pools: true, note: '' };
  return (
    auditNginx(file, { front: [lb], upstream: [lb], system: STOCK, nginxVersion: '1.22.1' })
      // info: doctor's advice where nothing waits that long; check reports warnings only.
      .findings.filter((f) => f.severity !== 'info' && SAME[f.code] !== undefined)
      .map((f) => `${SAME[f.code]} ${f.evidence.line}:${f.evidence.col}`)
      .sort()
  );
}

const corpus = [
  ...readdirSync(path.join(ROOT, 'examples'))
    .filter((f) => f.endsWith('.conf'))
    .map((f) => path.join(ROOT, 'examples', f)),
  ...['seed/nginx.conf', 'upstreams/nginx.conf', 'values/nginx.conf', 'agree/nginx.conf'].map((f) =>
    path.join(FIXTURES, f),
  ),
];

describe('check and doctor --nginx agree', () => {
  const compared = new Set<string>();
  for (const file of corpus) {
    for (const idle of [10, 60, 75, 350]) {
      it(`${path.relative(ROOT, file)} behind a ${idle} s load balancer`, (t) => {
        const copy = withLb(file, idle);
        const checked = fromCheck(copy);
        if (checked === undefined) {
          t.skip('not valid for check');
          return;
        }
        const doctored = fromDoctor(copy, idle);
        assert.deepEqual(doctored, checked);
        if (checked.length > 0) compared.add(path.relative(ROOT, file));
      });
    }
  }

  it('is not vacuous: every file of the corpus had hazards to compare', () => {
    assert.deepEqual([...compared].sort(), corpus.map((f) => path.relative(ROOT, f)).sort());
  });
});
