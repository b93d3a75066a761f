/** `keepwire doctor` through the real CLI: exit codes, --fail-on, --json, usage errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FIXTURES, MAIN } from './support.js';

function doctor(...args: string[]) {
  const r = spawnSync(
    process.execPath,
    [MAIN, 'doctor', '--no-sockets', '--nginx-version', '1.22.1', ...args],
    {
      encoding: 'utf8',
      cwd: FIXTURES,
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const SEED = path.join(FIXTURES, 'seed', 'nginx.conf');
const UPSTREAMS = path.join(FIXTURES, 'upstreams', 'nginx.conf');

describe('keepwire doctor CLI', () => {
  it('--lb list prints every profile with its timeout, expiry and source; --json for scripts', () => {
    const r = doctor('--lb', 'list');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^aws-nat-gateway +5m50s +rst +https:\/\/docs\.aws\.amazon\.com\//m);
    assert.match(r.stdout, /^kube-proxy-iptables +1d +drop +https:\/\/kubernetes\.io\//m);
    assert.match(r.stdout, /^envoy-default +5m +http-error 504 pools https:\/\/www\.envoyproxy\.io\//m);
    const json = doctor('--lb', 'list', '--json');
    assert.equal(json.code, 0, json.stderr);
    const list = JSON.parse(json.stdout) as { name: string; idleSeconds: number; source: string }[];
    const byName = new Map(list.map((p) => [p.name, p]));
    assert.equal(byName.get('kube-proxy-ipvs')?.idleSeconds, 900);
    assert.equal(byName.get('azure-redis')?.idleSeconds, 600);
    assert.ok(list.every((p) => p.source.startsWith('https://')));
  });

  it('exit 1 on errors: the seed comma line, with evidence, source line, why and fix', () => {
    const r = doctor('--lb', 'aws-nlb', '--nginx', SEED);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^nginx configuration:$/m);
    assert.match(r.stdout, /error {3}listen-comma {2}seed\/sites-enabled\/default:2:14/);
    assert.match(r.stdout, / {6}2 \| {5}listen 80, so_keepalive=60s::;\n {8}\| {14}\^/);
    assert.match(r.stdout, /fix: listen 80 so_keepalive=233s:58s:3;/);
    assert.match(
      r.stdout,
      /^keepwire doctor: \d+ errors?, \d+ warnings?, \d+ info: FAIL \(--fail-on error\)$/m,
    );
  });

  it('--json for CI: findings with severity, code, layer, evidence, why, fix', () => {
    const r = doctor('--lb', 'aws-nlb', '--nginx', SEED, '--json');
    assert.equal(r.code, 1);
    const doc = JSON.parse(r.stdout) as {
      failed: boolean;
      failOn: string;
      findings: {
        code: string;
        layer: string;
        severity: string;
        evidence: { file?: string; line?: number; col?: number };
        why: string;
        fix: string;
      }[];
      summary: { error: number };
      lb: { front: { name: string; idleSeconds: number }[] };
    };
    assert.equal(doc.failed, true);
    assert.equal(doc.failOn, 'error');
    assert.deepEqual(
      doc.lb.front.map((b) => [b.name, b.idleSeconds]),
      [['aws-nlb', 350]],
    );
    const comma = doc.findings.find((f) => f.code === 'listen-comma')!;
    assert.deepEqual(
      {
        layer: comma.layer,
        severity: comma.severity,
        file: comma.evidence.file,
        line: comma.evidence.line,
        col: comma.evidence.col,
      },
      { layer: 'nginx', severity: 'error', file: 'seed/sites-enabled/default', line: 2, col: 14 },
    );
    assert.ok(comma.why.length > 0 && comma.fix.length > 0);
    assert.equal(doc.summary.error, doc.findings.filter((f) => f.severity === 'error').length);
  });

  it('--fail-on: warnings pass by default and fail with --fail-on warning', () => {
    // nginx 1.22 with the upstream variants and no LB: only the keep-alive header warnings remain.
    const args = ['--nginx', UPSTREAMS, '--json'];
    const lenient = doctor(...args);
    const doc = JSON.parse(lenient.stdout) as { findings: { severity: string; layer: string }[] };
    const nginxSeverities = new Set(doc.findings.filter((f) => f.layer === 'nginx').map((f) => f.severity));
    assert.ok(nginxSeverities.has('warning') && !nginxSeverities.has('error'), JSON.stringify(doc.findings));
    if (doc.findings.some((f) => f.severity === 'error')) {
      // Only the host layer can add an error here (no LB given, so none is expected).
      assert.fail(`unexpected error finding: ${lenient.stdout}`);
    }
    assert.equal(lenient.code, 0);
    assert.equal(doctor(...args, '--fail-on', 'warning').code, 1);
  });

  it('exit 0 and "ok" when nothing reaches --fail-on', () => {
    const r = doctor('--lb', 'aws-nlb', '--chain', 'client-pool=30s, aws-nlb, app=400s');
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /client-pool 30s -> aws-nlb 350s -> app 400s/);
  });

  it('chain violations fail', () => {
    const r = doctor('--chain', 'client-pool=4s, aws-alb, nginx, app=5s', '--json');
    assert.equal(r.code, 1);
    assert.deepEqual(
      (JSON.parse(r.stdout) as { findings: { code: string }[] }).findings.map((f) => f.code),
      ['chain-caller-outlives-server'],
    );
  });

  it('usage errors exit 2 with a message and no stack', () => {
    for (const args of [
      ['--lb', 'haproxy'],
      ['--lb-idle', '5x'],
      ['--fail-on', 'info'],
      ['--pid', 'abc'],
      ['--chain', 'client=4s, mystery'],
      ['--pid', '999999999'],
      ['--nginx-version', 'latest'],
    ]) {
      const r = doctor(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.ok(r.stderr.length > 0, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('--help documents the exit codes', () => {
    const r = doctor('--help');
    assert.equal(r.code, 0);
    assert.match(
      r.stdout,
      /Exit status: 0 no finding at or above --fail-on, 1 findings at or above it, 2 usage error/,
    );
  });
});
