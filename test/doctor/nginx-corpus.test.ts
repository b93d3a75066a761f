/**
 * The nginx corpus under test/fixtures/nginx: every finding, exactly (code,
 * severity, file:line:col), against a stock host's keepalive defaults.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auditNginx } from '../../src/doctor/nginx.js';
import { middleboxFromArg } from '../../src/doctor/profiles.js';
import { brief, FIXTURES, STOCK } from './support.js';

// Evidence names included files relative to the working directory, as nginx -t does.
process.chdir(FIXTURES);

function audit(file: string, front: string[], upstream: string[] = [], nginxVersion = '1.22.1') {
  return auditNginx(file, {
    front: front.map(middleboxFromArg),
    upstream: upstream.map(middleboxFromArg),
    system: STOCK,
    nginxVersion,
  });
}

describe('seed layout (includes, the seed comma line)', () => {
  it('reports the comma at its column through two levels of includes, prefix-relative include resolved', () => {
    const r = audit('seed/nginx.conf', ['aws-nlb']);
    assert.deepEqual(brief(r.findings), [
      'error listen-comma seed/sites-enabled/default:2:14',
      'info upstream-no-keepalive seed/sites-enabled/default:5:9',
    ]);
    const comma = r.findings[0]!;
    assert.equal(comma.fix, 'listen 80 so_keepalive=233s:58s:3;');
    assert.match(comma.why, /host not found in "80,"/);
    // snippets/proxy.conf was read (its proxy_http_version and Connection "" count).
    assert.ok(r.sources.has('seed/snippets/proxy.conf'));
  });

  it('"60s::" leaves the interval at the host default: probes every max(60, 75) = 75 s, too late for a 70 s LB', () => {
    const r = audit('seed/nginx.conf', ['lvs=70s']);
    assert.deepEqual(brief(r.findings), [
      'error listen-comma seed/sites-enabled/default:2:14',
      'error so-keepalive-too-long seed/sites-enabled/default:2:16',
      'info upstream-no-keepalive seed/sites-enabled/default:5:9',
    ]);
    assert.match(r.findings[1]!.message, /max\(60, 75\) = 1m15s \(net\.ipv4\.tcp_keepalive_intvl/);
    assert.equal(r.systemDependents.length, 1, 'the listener relies on the host sysctls');
  });
});

describe('upstream keep-alive variants', () => {
  it('nginx 1.22: HTTP/1.0 default, Connection header not inherited, explicit 1.0, kernel-default socket keepalive', () => {
    const r = audit('upstreams/nginx.conf', ['aws-alb'], ['azure-lb']);
    // In file order; a read timeout above the L7 box points at the proxy_read_timeout that sets
    // it (the line the fix changes), as check does; it pointed at proxy_pass before doctor --nginx
    // ran the hazard engine.
    assert.deepEqual(brief(r.findings), [
      'error upstream-pool-outlives-lb upstreams/nginx.conf:4:65',
      'error keepalive-timeout-below-lb upstreams/nginx.conf:9:9',
      'warning upstream-keepalive-http10 upstreams/nginx.conf:10:23',
      'warning upstream-keepalive-connection-close upstreams/nginx.conf:11:23',
      'warning upstream-keepalive-http10 upstreams/nginx.conf:12:49',
      'error upstream-keepalive-too-long upstreams/nginx.conf:13:78',
      'error upstream-no-keepalive upstreams/nginx.conf:14:23',
      'warning read-timeout-above-lb upstreams/nginx.conf:14:48',
      'warning read-timeout-above-lb upstreams/nginx.conf:15:57',
    ]);
    const byCode = (c: string) => r.findings.find((f) => f.code === c)!;
    assert.equal(byCode('keepalive-timeout-below-lb').fix, 'keepalive_timeout 66s;');
    assert.match(byCode('keepalive-timeout-below-lb').why, /502/);
    assert.match(
      byCode('upstream-keepalive-connection-close').message,
      /not inherited because this level sets its own/,
    );
    assert.equal(byCode('upstream-keepalive-connection-close').fix, 'proxy_set_header Connection "";');
    assert.equal(byCode('upstream-keepalive-http10').fix, 'proxy_http_version 1.1;');
    assert.match(byCode('upstream-keepalive-too-long').message, /max\(7200, 75\) = 2h/);
    assert.equal(byCode('upstream-keepalive-too-long').fix, 'net.ipv4.tcp_keepalive_time = 160');
    assert.equal(
      byCode('upstream-no-keepalive').fix,
      'proxy_socket_keepalive on; # plus net.ipv4.tcp_keepalive_time = 160 on this host',
    );
  });

  it('nginx 1.29.7 defaults to keep-alive upstream: only the explicit proxy_http_version 1.0 remains', () => {
    const r = audit('upstreams/nginx.conf', ['aws-alb'], ['azure-lb'], '1.29.7');
    const codes = brief(r.findings).filter((b) => b.includes('upstream-keepalive-'));
    assert.deepEqual(codes, [
      'warning upstream-keepalive-http10 upstreams/nginx.conf:12:49',
      'error upstream-keepalive-too-long upstreams/nginx.conf:13:78',
    ]);
  });

  it('a pool that outlives the middlebox toward the upstream, without socket keepalive: stale pooled connection', () => {
    const r = audit('upstreams/nginx.conf', [], ['azure-lb']);
    const pool = r.findings.filter((f) => f.code === 'upstream-pool-outlives-lb');
    assert.deepEqual(brief(pool), ['error upstream-pool-outlives-lb upstreams/nginx.conf:4:65']);
    assert.match(pool[0]!.why, /stale pooled connection/);
    assert.equal(pool[0]!.fix, 'keepalive_timeout 160s;');
  });

  it('short host keepalive defaults make proxy_socket_keepalive on sufficient', () => {
    const r = auditNginx('upstreams/nginx.conf', {
      front: [],
      upstream: [middleboxFromArg('azure-lb')],
      system: { idle: 60, interval: 10, count: 3 },
      nginxVersion: '1.29.7',
    });
    assert.ok(!brief(r.findings).some((b) => b.includes('upstream-keepalive-too-long')));
    assert.equal(
      r.findings.find((f) => f.code === 'upstream-no-keepalive')!.fix,
      'proxy_socket_keepalive on;',
    );
  });
});

describe('keepalive values nginx -t accepts or refuses', () => {
  it('each listener: invalid syntax, kernel-refused values, on with kernel defaults, absent, off, shared socket', () => {
    const r = audit('values/nginx.conf', ['f5']);
    assert.deepEqual(
      brief(r.findings).filter((b) => !b.includes('upstream-no-keepalive')),
      [
        'error so-keepalive-invalid values/nginx.conf:3:39',
        'error so-keepalive-too-long values/nginx.conf:4:26',
        'error so-keepalive-kernel-refuses values/nginx.conf:4:39',
        'error so-keepalive-kernel-refuses values/nginx.conf:5:47',
        'error so-keepalive-invalid values/nginx.conf:6:39',
        'error so-keepalive-too-long values/nginx.conf:7:26',
        'error listen-no-keepalive values/nginx.conf:8:14',
        'info listen-no-keepalive values/nginx.conf:9:14',
        'error listen-no-keepalive values/nginx.conf:10:14',
        'info listen-no-keepalive values/nginx.conf:16:14',
      ],
    );
    const refused = r.findings.find((f) => f.code === 'so-keepalive-kernel-refuses')!;
    assert.match(refused.why, /nginx -t accepts it/);
    assert.match(refused.why, /EINVAL/);
    // The refused idle was never set, so the listener probes at the host's 7200 s.
    assert.match(
      r.findings.find((f) => f.evidence.line === 4 && f.code === 'so-keepalive-too-long')!.message,
      /max\(7200, 10\)/,
    );
    assert.equal(r.findings.find((f) => f.evidence.line === 8)!.fix, 'listen 5437 so_keepalive=200s:50s:3;');
    assert.match(r.findings.find((f) => f.evidence.line === 8)!.why, /reset of a long request/);
    // `listen 80;` on line 14 shares the socket of line 13, which has so_keepalive.
    assert.ok(!r.findings.some((f) => f.evidence.line === 14));
  });

  it('no load balancer given: syntax and kernel findings only', () => {
    const r = audit('values/nginx.conf', []);
    assert.deepEqual(
      brief(r.findings).filter((b) => !b.includes('upstream-no-keepalive')),
      [
        'error so-keepalive-invalid values/nginx.conf:3:39',
        'error so-keepalive-kernel-refuses values/nginx.conf:4:39',
        'error so-keepalive-kernel-refuses values/nginx.conf:5:47',
        'error so-keepalive-invalid values/nginx.conf:6:39',
      ],
    );
  });

  it('an unreadable file is one config-unreadable error', () => {
    const r = auditNginx('missing.conf', { front: [], upstream: [], system: STOCK });
    assert.deepEqual(brief(r.findings), ['error config-unreadable missing.conf']);
  });
});
