/**
 * `doctor --k8s-manifest`: Ingresses, Services and workloads of one
 * multi-document manifest (test/fixtures/kubernetes/shop.yaml) read into each
 * workload's timeout chain; the pods' keepalive sysctls judged against the
 * load balancers their annotations create; findings at the key's line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { auditManifests } from '../../src/doctor/kubernetes.js';
import { middleboxFromArg } from '../../src/doctor/profiles.js';
import { tempDir } from '../support.js';
import { brief, MAIN, ROOT, STOCK } from './support.js';

process.chdir(path.join(ROOT, 'test', 'fixtures'));
const audit = (front: string[], file = 'kubernetes/shop.yaml') =>
  auditManifests(file, { front: front.map(middleboxFromArg), upstream: [], system: STOCK });

describe('doctor --k8s-manifest', () => {
  it('each workload’s chain from its Ingress and Service annotations, and pods whose sysctls probe too late', () => {
    const r = audit([]);
    assert.deepEqual(brief(r.findings), [
      'info k8s-chain kubernetes/shop.yaml:30:1',
      'info k8s-chain kubernetes/shop.yaml:57:1',
      'error k8s-pod-keepalive-too-late kubernetes/shop.yaml:70:11',
      'info k8s-chain kubernetes/shop.yaml:97:1',
    ]);
    assert.equal(
      r.findings[0]!.message,
      'client → Ingress web (AWS ALB): aws-alb idle 2m → Service web → Deployment web: tcp_keepalive 7200/75/9 (namespace defaults)',
    );
    assert.equal(
      r.findings[1]!.message,
      'client → Service pg (AWS NLB): aws-nlb idle 5m50s → StatefulSet pg: tcp_keepalive 600/30/9',
    );
    assert.match(
      r.findings[2]!.message,
      /StatefulSet pg: .* max\(600, 30\) = 10m, not below aws-nlb's idle timeout 5m50s/,
    );
  });

  it('the fix is a pod securityContext that parses and sets the three sysctls', () => {
    const fix = audit([]).findings.find((f) => f.code === 'k8s-pod-keepalive-too-late')!.fix;
    const doc = parse(fix) as { securityContext: { sysctls: { name: string; value: string }[] } };
    assert.deepEqual(doc.securityContext.sysctls, [
      { name: 'net.ipv4.tcp_keepalive_time', value: '233' },
      { name: 'net.ipv4.tcp_keepalive_intvl', value: '58' },
      { name: 'net.ipv4.tcp_keepalive_probes', value: '3' },
    ]);
  });

  it('a pod without sysctls starts at the kernel defaults: too late behind an L4 box given with --lb', () => {
    const r = audit(['lvs=300s']);
    const late = r.findings.filter((f) => f.code === 'k8s-pod-keepalive-too-late');
    assert.deepEqual(brief(late), [
      'error k8s-pod-keepalive-too-late kubernetes/shop.yaml:31:1',
      'error k8s-pod-keepalive-too-late kubernetes/shop.yaml:70:11',
      'error k8s-pod-keepalive-too-late kubernetes/shop.yaml:98:1',
    ]);
    assert.match(late[0]!.message, /namespace starts at the kernel defaults/);
  });

  it('ingress-nginx proxy-read-timeout above an L7 box in front of it', () => {
    const r = audit(['cloudflare']);
    const f = r.findings.find((x) => x.code === 'k8s-ingress-read-timeout-above-lb')!;
    assert.equal(f.evidence.where, 'kubernetes/shop.yaml:82:5');
    assert.equal(f.fix, 'nginx.ingress.kubernetes.io/proxy-read-timeout: "99"');
  });

  it('a bad annotation value and invalid YAML are one error at their line; the CLI prints it with --json', () => {
    const dir = tempDir('kw-doctor-k8s-');
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      [
        'apiVersion: v1',
        'kind: Service',
        'metadata:',
        '  name: x',
        '  annotations:',
        '    service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout: "4m"',
        'spec: { type: LoadBalancer }',
        '',
      ].join('\n'),
    );
    const r = auditManifests(bad, { front: [], upstream: [], system: STOCK });
    assert.deepEqual(brief(r.findings), [`error config-invalid ${bad}:6:5`]);
    assert.match(r.findings[0]!.message, /"4m" is not a whole number of minutes/);
    const cli = spawnSync(
      process.execPath,
      [MAIN, 'doctor', '--no-sockets', '--k8s-manifest', bad, '--json'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(cli.status, 1, cli.stderr);
    const doc = JSON.parse(cli.stdout) as { findings: { code: string; layer: string }[] };
    assert.ok(doc.findings.some((f) => f.layer === 'kubernetes' && f.code === 'config-invalid'));
  });
});
