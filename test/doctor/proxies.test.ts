/**
 * `doctor --haproxy` and `--envoy`: HAProxy configurations and Envoy
 * bootstraps (test/fixtures/haproxy, test/fixtures/envoy, shaped like real
 * deployments) read into the timeout chain; every finding at file:line with
 * a fix in the tool's own syntax. The HAProxy fixtures, and each fixture with
 * a finding's fix written in at the finding's line, pass `haproxy -c`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { auditEnvoy, envoyDurationMs } from '../../src/doctor/envoy.js';
import { auditHaproxy, haproxyTimeMs } from '../../src/doctor/haproxy.js';
import { middleboxFromArg } from '../../src/doctor/profiles.js';
import { tempDir } from '../support.js';
import { brief, MAIN, ROOT, STOCK } from './support.js';

const HAPROXY = path.join(ROOT, 'test', 'fixtures', 'haproxy');
const ENVOY = path.join(ROOT, 'test', 'fixtures', 'envoy');
process.chdir(path.join(ROOT, 'test', 'fixtures'));

const lbs = (names: string[]) => names.map(middleboxFromArg);

function haproxy(file: string, front: string[], upstream: string[] = []) {
  return auditHaproxy(`haproxy/${file}`, { front: lbs(front), upstream: lbs(upstream), system: STOCK });
}

/** `haproxy -c` on a file; skipped (failed under CI=true) where HAProxy is not installed. */
function haproxyCheck(file: string, t: { skip(reason: string): void }): boolean {
  const r = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8', timeout: 20_000 });
  if (r.error) {
    if (process.env.CI === 'true')
      throw new Error(`haproxy is needed (scripts/system-deps.sh): ${r.error.message}`);
    t.skip('haproxy not installed');
    return false;
  }
  assert.equal(r.status, 0, `haproxy -c ${file}:\n${r.stdout}${r.stderr}`);
  return true;
}

describe('doctor --haproxy', () => {
  it('times in HAProxy units: milliseconds by default, seconds for the TCP keepalive keywords', () => {
    assert.equal(haproxyTimeMs('50000'), 50_000);
    assert.equal(haproxyTimeMs('30s'), 30_000);
    assert.equal(haproxyTimeMs('1h'), 3_600_000);
    assert.equal(haproxyTimeMs('600', 's'), 600_000);
    assert.equal(haproxyTimeMs('1x'), undefined);
  });

  it('behind a pooling ALB: keep-alive below its idle, a slow backend and a long tunnel', () => {
    const r = haproxy('edge.cfg', ['aws-alb']);
    assert.deepEqual(brief(r.findings), [
      'error haproxy-keep-alive-below-lb haproxy/edge.cfg:17:5',
      'warning haproxy-timeout-server-above-lb haproxy/edge.cfg:25:5',
      'warning haproxy-timeout-tunnel-above-lb haproxy/edge.cfg:26:5',
    ]);
    assert.equal(r.findings[0]!.fix, 'timeout http-keep-alive 66s');
    assert.equal(r.findings[1]!.fix, 'timeout server 59s');
    assert.equal(r.timeouts.server, 30, 'the chain sees the client-side keep-alive');
  });

  it('TCP keepalive against L4 boxes: defaults inheritance (unnamed, `from NAME`, tcpka), kernel values for unset fields', () => {
    const r = haproxy('tcp.cfg', ['aws-nlb'], ['azure-lb']);
    assert.deepEqual(brief(r.findings), [
      'error haproxy-clitcpka-too-late haproxy/tcp.cfg:15:5',
      'error haproxy-srvtcpka-too-late haproxy/tcp.cfg:29:5',
    ]);
    assert.match(r.findings[0]!.message, /frontend "pg": clitcpka .* max\(600, 30\) = 10m/);
    // listen "redis" takes `option tcpka` from `defaults tuned`; no srvtcpka-* there: the kernel's 7200 s.
    assert.match(r.findings[1]!.message, /listen "redis": srvtcpka .* max\(7200, 75\)/);
    assert.equal(
      r.findings[1]!.fix,
      'option srvtcpka\nsrvtcpka-idle 160s\nsrvtcpka-intvl 40s\nsrvtcpka-cnt 3',
    );
    assert.equal(r.systemDependents.length, 3, 'pg_servers count, pg count, redis all three');
  });

  it('no keepalive at all facing an L4 box: error when something waits longer than it, advice otherwise', (t) => {
    const dir = tempDir('kw-doctor-haproxy-');
    const file = path.join(dir, 'plain.cfg');
    writeFileSync(
      file,
      [
        'defaults',
        '    mode tcp',
        '    timeout connect 5s',
        '    timeout client 1h',
        '    timeout server 1h',
        'listen db',
        '    bind 127.0.0.1:15433',
        '    server db1 10.0.5.1:5432',
        'listen cache',
        '    bind 127.0.0.1:16380',
        '    timeout client 30s',
        '    timeout server 30s',
        '    server c1 10.0.5.2:6379',
        '',
      ].join('\n'),
    );
    const r = auditHaproxy(file, { front: lbs(['aws-nlb']), upstream: [], system: STOCK });
    assert.deepEqual(
      r.findings.map((f) => `${f.severity} ${f.code} ${f.evidence.line}`),
      ['error haproxy-no-clitcpka 6', 'info haproxy-no-clitcpka 9'],
    );
    haproxyCheck(file, t);
  });

  it('the fixtures are real HAProxy configurations, and so is each one with its fixes written in', (t) => {
    const dir = tempDir('kw-doctor-haproxy-fixed-');
    for (const [file, front, upstream] of [
      ['edge.cfg', ['aws-alb'], []],
      ['tcp.cfg', ['aws-nlb'], ['azure-lb']],
    ] as const) {
      if (!haproxyCheck(path.join(HAPROXY, file), t)) return;
      const r = haproxy(file, [...front], [...upstream]);
      const lines = readFileSync(path.join(HAPROXY, file), 'utf8').split('\n');
      // Each fix goes in right after the line the finding points at, in the same section.
      for (const f of [...r.findings].sort((a, b) => b.evidence.line! - a.evidence.line!))
        lines.splice(f.evidence.line!, 0, ...f.fix.split('\n').map((l) => `    ${l}`));
      const fixed = path.join(dir, file);
      writeFileSync(fixed, lines.join('\n'));
      haproxyCheck(fixed, t);
      assert.deepEqual(
        brief(
          auditHaproxy(fixed, { front: lbs([...front]), upstream: lbs([...upstream]), system: STOCK })
            .findings,
        ),
        [],
        `${file} with its fixes has no finding left`,
      );
    }
  });

  it('unreadable and invalid files: one error at file:line with a hint', () => {
    const dir = tempDir('kw-doctor-haproxy-bad-');
    const bad = path.join(dir, 'bad.cfg');
    writeFileSync(bad, 'defaults\n    timeout client 5q\n');
    const r = auditHaproxy(bad, { front: [], upstream: [], system: STOCK });
    assert.deepEqual(brief(r.findings), [`error config-invalid ${bad}:2:20`]);
    assert.match(r.findings[0]!.message, /timeout client "5q" is not a time/);
    const missing = auditHaproxy(path.join(dir, 'none.cfg'), { front: [], upstream: [], system: STOCK });
    assert.deepEqual(
      missing.findings.map((f) => f.code),
      ['config-unreadable'],
    );
  });
});

describe('doctor --envoy', () => {
  it('protobuf durations: "300s", "0.5s", {seconds, nanos}', () => {
    assert.equal(envoyDurationMs('300s'), 300_000);
    assert.equal(envoyDurationMs('0.5s'), 500);
    assert.equal(envoyDurationMs({ seconds: 2, nanos: 500_000_000 }), 2500);
    assert.equal(envoyDurationMs('5m'), undefined);
  });

  const envoy = (front: string[], upstream: string[] = []) =>
    auditEnvoy('envoy/front-proxy.yaml', { front: lbs(front), upstream: lbs(upstream), system: STOCK });

  it('behind L4 boxes: listener socket options, cluster tcp_keepalive, a pool idle past the box, at the keys’ lines', () => {
    const r = envoy(['aws-nlb'], ['azure-lb']);
    assert.deepEqual(brief(r.findings), [
      'error envoy-listener-no-keepalive envoy/front-proxy.yaml:4:5',
      'error envoy-listener-keepalive-too-late envoy/front-proxy.yaml:35:7',
      'error envoy-pool-outlives-lb envoy/front-proxy.yaml:50:11',
      'error envoy-cluster-no-keepalive envoy/front-proxy.yaml:44:5',
      'error envoy-cluster-keepalive-too-late envoy/front-proxy.yaml:64:9',
    ]);
    assert.match(r.findings[0]!.fix, /^socket_options:\n- \{ level: 1, name: 9, int_value: 1/);
    assert.equal(
      r.findings[4]!.fix,
      'upstream_connection_options: { tcp_keepalive: { keepalive_time: 160, keepalive_interval: 40, keepalive_probes: 3 } }',
    );
    assert.deepEqual(r.timeouts, { server: 30, upstreamPool: 3600 });
  });

  it('behind a pooling ALB: the downstream idle_timeout below it, and a stream idle past it', () => {
    const r = envoy(['aws-alb']);
    assert.deepEqual(brief(r.findings).slice(0, 3), [
      'error envoy-idle-timeout-below-lb envoy/front-proxy.yaml:14:13',
      'warning envoy-response-outlives-lb envoy/front-proxy.yaml:15:11',
      'warning envoy-response-outlives-lb envoy/front-proxy.yaml:40:11',
    ]);
    assert.equal(r.findings[0]!.fix, 'common_http_protocol_options: { idle_timeout: 66s }');
  });

  it('HTTP/2 PINGs more often than an L4 box forgets hold its flows: no TCP keepalive needed, on either side', () => {
    const dir = tempDir('kw-doctor-envoy-h2-');
    const file = path.join(dir, 'h2.yaml');
    writeFileSync(
      file,
      [
        'static_resources:',
        '  listeners:',
        '  - name: h2_in',
        '    filter_chains:',
        '    - filters:',
        '      - name: envoy.filters.network.http_connection_manager',
        '        typed_config:',
        '          codec_type: HTTP2',
        '          http2_protocol_options: { connection_keepalive: { interval: 60s, timeout: 10s } }',
        '          route_config: { virtual_hosts: [ { routes: [ { route: { cluster: grpc, timeout: 0s } } ] } ] }',
        '',
      ].join('\n'),
    );
    const codes = (lb: string) =>
      auditEnvoy(file, { front: lbs([lb]), upstream: [], system: STOCK }).findings.map((f) => f.code);
    assert.deepEqual(codes('aws-nlb'), []);
    assert.deepEqual(codes('lvs=50s'), ['envoy-listener-no-keepalive']);
    // The fixture's grpc cluster pings every 30 s: no finding for it behind azure-lb (4 min).
    assert.ok(!envoy([], ['azure-lb']).findings.some((f) => f.message.includes('"grpc"')));
  });

  it('JSON bootstraps read alike; invalid YAML is one error at its line', () => {
    const dir = tempDir('kw-doctor-envoy-');
    const json = path.join(dir, 'bootstrap.json');
    writeFileSync(
      json,
      JSON.stringify(
        {
          static_resources: {
            clusters: [
              {
                name: 'db',
                upstream_connection_options: { tcp_keepalive: { keepalive_time: 600 } },
                load_assignment: {
                  endpoints: [
                    {
                      lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.1.1.1' } } } }],
                    },
                  ],
                },
              },
            ],
          },
        },
        null,
        2,
      ),
    );
    const r = auditEnvoy(json, { front: [], upstream: lbs(['aws-nlb']), system: STOCK });
    assert.deepEqual(brief(r.findings), [`error envoy-cluster-keepalive-too-late ${json}:8:13`]);
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'static_resources:\n  clusters: [\n');
    const b = auditEnvoy(bad, { front: [], upstream: [], system: STOCK });
    assert.equal(b.findings.length, 1);
    assert.equal(b.findings[0]!.code, 'config-invalid');
    assert.match(b.findings[0]!.evidence.where, /bad\.yaml:\d+:\d+$/);
  });

  it('through the CLI: --envoy and --haproxy with --json, and a chain hop named after them', () => {
    const r = spawnSync(
      process.execPath,
      [
        MAIN,
        'doctor',
        '--no-sockets',
        '--lb',
        'aws-alb',
        '--haproxy',
        path.join(HAPROXY, 'edge.cfg'),
        '--envoy',
        path.join(ENVOY, 'front-proxy.yaml'),
        '--chain',
        'client=10s, aws-alb, haproxy',
        '--json',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      findings: { code: string; layer: string }[];
      chain: { name?: string; source?: string }[];
    };
    assert.ok(doc.findings.some((f) => f.layer === 'haproxy' && f.code === 'haproxy-keep-alive-below-lb'));
    assert.ok(doc.findings.some((f) => f.layer === 'envoy' && f.code === 'envoy-idle-timeout-below-lb'));
    assert.ok(
      doc.findings.some((f) => f.code === 'chain-lb-pool-outlives-backend'),
      'the ALB pools past HAProxy’s 30 s',
    );
    assert.match(doc.chain.at(-1)!.source!, /edge\.cfg: client keep-alive 30s/);
  });
});
