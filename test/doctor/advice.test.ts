/**
 * Advice that must be right (issue #23 item 7): which sysctl a config relies
 * on, what keepwire itself sends upstream, the interval whenever it matters,
 * and no TCP keepalive advice for an L7 load balancer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { hostFindings } from '../../src/doctor/host.js';
import { auditKeepwireConfig } from '../../src/doctor/keepwire-config.js';
import { auditNginx } from '../../src/doctor/nginx.js';
import { middleboxFromArg } from '../../src/doctor/profiles.js';
import { recommend } from '../../src/keepalive/recommend.js';
import { tempDir } from '../support.js';
import { MAIN, ROOT, STOCK } from './support.js';

const dir = tempDir('keepwire-doctor-advice-');

function nginxConf(listen: string): string {
  const file = path.join(dir, `nginx-${listen.replace(/[^a-z0-9]/gi, '_')}.conf`);
  writeFileSync(
    file,
    ['http {', '    server {', `        listen ${listen};`, '        return 200;', '    }', '}', ''].join(
      '\n',
    ),
  );
  return file;
}

function hostAgainst(lb: string, file: string) {
  const box = middleboxFromArg(lb);
  const audit = auditNginx(file, { front: [box], upstream: [], system: STOCK, nginxVersion: '1.22.1' });
  return { audit, host: hostFindings({ keepalive: STOCK }, box, audit.systemDependents) };
}

describe('doctor advice', () => {
  it('so_keepalive=60s:: sets its own idle: a stock tcp_keepalive_time is a warning, not an error, behind aws-nlb', () => {
    const { audit, host } = hostAgainst('aws-nlb', nginxConf('80 so_keepalive=60s::'));
    assert.deepEqual(
      audit.findings.filter((f) => f.severity === 'error'),
      [],
    );
    const f = host.find((x) => x.code === 'kernel-keepalive-too-long');
    assert.ok(f, JSON.stringify(host));
    assert.equal(f.severity, 'warning', f.message);
    assert.doesNotMatch(f.message, /relies/);
  });

  it('so_keepalive=60s:: relies on the interval: behind a 60 s LB the error names tcp_keepalive_intvl and the fix sets it', () => {
    const { host } = hostAgainst('lvs=60s', nginxConf('80 so_keepalive=60s::'));
    const f = host.find((x) => x.layer === 'host');
    assert.ok(f, JSON.stringify(host));
    assert.equal(f.severity, 'error');
    assert.match(f.message, /1 place relies on net\.ipv4\.tcp_keepalive_intvl/);
    assert.equal(
      f.fix,
      'net.ipv4.tcp_keepalive_time = 40\nnet.ipv4.tcp_keepalive_intvl = 10\nnet.ipv4.tcp_keepalive_probes = 3',
    );
  });

  it('so_keepalive=on relies on tcp_keepalive_time: error', () => {
    const { host } = hostAgainst('aws-nlb', nginxConf('80 so_keepalive=on'));
    const f = host.find((x) => x.code === 'kernel-keepalive-too-long');
    assert.equal(f?.severity, 'error');
    // 350 s LB: the stock 75 s interval does not matter, only the idle is set.
    assert.equal(f?.fix, 'net.ipv4.tcp_keepalive_time = 233');
  });

  it('doctor -c examples/http.conf agrees with check: no Connection: close warning (keepwire sends none on HTTP/1.1)', () => {
    const file = path.join(ROOT, 'examples', 'http.conf');
    const check = loadConfig(file);
    assert.deepEqual(
      check.diagnostics.map((d) => d.code),
      [],
    );
    const audit = auditKeepwireConfig(file, { front: [], upstream: [], system: STOCK });
    assert.deepEqual(
      audit.findings.map((f) => f.code),
      [],
    );
  });

  it('recommend prints tcp_keepalive_intvl and probes when the LB idle is not above the 75 s stock interval', () => {
    assert.deepEqual(
      recommend(60).sysctl.map((s) => s.name),
      ['net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes'],
    );
    assert.deepEqual(
      recommend(75).sysctl.map((s) => s.name),
      ['net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes'],
    );
    assert.deepEqual(
      recommend(350).sysctl.map((s) => s.name),
      ['net.ipv4.tcp_keepalive_time'],
    );
    const r = spawnSync(process.execPath, [MAIN, 'recommend', '--lb-idle', '60s'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /net\.ipv4\.tcp_keepalive_intvl = 10\n/);
    assert.match(r.stdout, /net\.ipv4\.tcp_keepalive_probes = 3\n/);
  });

  it('an upstream-leg sysctl fix behind a 60 s LB sets the interval too', () => {
    const file = path.join(dir, 'upstream.conf');
    writeFileSync(
      file,
      [
        'http {',
        '    server {',
        '        listen 80;',
        '        location / {',
        '            proxy_pass http://10.0.0.5:8080;',
        '            proxy_socket_keepalive on;',
        '        }',
        '    }',
        '}',
        '',
      ].join('\n'),
    );
    const audit = auditNginx(file, {
      front: [],
      upstream: [middleboxFromArg('lvs=60s')],
      system: STOCK,
      nginxVersion: '1.22.1',
    });
    const f = audit.findings.find((x) => x.code === 'upstream-keepalive-too-long');
    assert.ok(f, JSON.stringify(audit.findings));
    assert.equal(
      f.fix,
      'net.ipv4.tcp_keepalive_time = 40\nnet.ipv4.tcp_keepalive_intvl = 10\nnet.ipv4.tcp_keepalive_probes = 3',
    );
  });

  it('behind aws-alb (L7) no TCP keepalive sysctl advice; the fix is the HTTP keep-alive timeout above its idle', () => {
    const box = middleboxFromArg('aws-alb');
    assert.deepEqual(hostFindings({ keepalive: STOCK }, box, []), []);
    const file = path.join(dir, 'alb.conf');
    writeFileSync(
      file,
      [
        'http {',
        '    server {',
        '        listen 80 so_keepalive=on;',
        '        keepalive_timeout 30s;',
        '        return 200;',
        '    }',
        '}',
        '',
      ].join('\n'),
    );
    const audit = auditNginx(file, { front: [box], upstream: [], system: STOCK, nginxVersion: '1.22.1' });
    assert.deepEqual(
      audit.findings.map((f) => `${f.code} ${f.fix}`),
      ['keepalive-timeout-below-lb keepalive_timeout 66s;'],
    );
    assert.deepEqual(hostFindings({ keepalive: STOCK }, box, audit.systemDependents), []);
  });
});
