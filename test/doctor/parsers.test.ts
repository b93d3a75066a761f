/** Parsers the doctor relies on: nginx's so_keepalive rules, ss output, /proc/net/tcp endpoints, profiles. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseNginxSoKeepalive, versionAtLeast } from '../../src/doctor/nginx.js';
import { middleboxFromArg, PROFILES } from '../../src/doctor/profiles.js';
import { hexEndpoint, isLoopbackSocket, parseSs, parseSsTimer } from '../../src/doctor/sockets.js';
import { ROOT } from './support.js';

describe('nginx so_keepalive, as ngx_http_core_listen reads it', () => {
  it('empty and 0 fields mean the system default; a value that sets nothing is refused', () => {
    assert.deepEqual(parseNginxSoKeepalive('60s::'), {
      ok: true,
      enable: true,
      idle: 60,
      interval: 0,
      count: 0,
    });
    assert.deepEqual(parseNginxSoKeepalive('0:10:3'), {
      ok: true,
      enable: true,
      idle: 0,
      interval: 10,
      count: 3,
    });
    assert.deepEqual(parseNginxSoKeepalive('1m30s'), {
      ok: true,
      enable: true,
      idle: 90,
      interval: 0,
      count: 0,
    });
    assert.equal(parseNginxSoKeepalive('::').ok, false);
    assert.equal(parseNginxSoKeepalive('0::').ok, false);
    assert.equal(parseNginxSoKeepalive('').ok, false);
  });

  it('no ms, count is a plain number, a fourth field spoils the count', () => {
    assert.equal(parseNginxSoKeepalive('500ms::').ok, false);
    assert.equal(parseNginxSoKeepalive('60s:10s:3s').ok, false);
    const four = parseNginxSoKeepalive('60s:10s:3:4');
    assert.ok(!four.ok && four.offset === 9);
  });

  it('kernel-range values pass nginx (the kernel refuses them later)', () => {
    assert.deepEqual(parseNginxSoKeepalive('40000s::'), {
      ok: true,
      enable: true,
      idle: 40000,
      interval: 0,
      count: 0,
    });
  });

  it('compares versions', () => {
    assert.ok(versionAtLeast('1.29.7', [1, 29, 7]));
    assert.ok(versionAtLeast('1.30', [1, 29, 7]));
    assert.ok(!versionAtLeast('1.29.6', [1, 29, 7]));
    assert.ok(!versionAtLeast('1.22.1', [1, 29, 7]));
  });
});

describe('ss output', () => {
  const sample = [
    '0      0      198.18.5.1:43639 198.18.5.1:40246 users:(("node",pid=31548,fd=22)) timer:(keepalive,28sec,0)',
    '\t ts sack bbr wscale:10,10 rto:200 lastsnd:1420 lastrcv:1300 lastack:1300 snd_wnd:65536',
    '0      0      198.18.5.1:40246 198.18.5.1:43639 users:(("node",pid=31548,fd=20))',
    '\t ts sack lastsnd:90500 lastrcv:91000 lastack:1420',
    '0      36     [::1]:22 [::1]:50000 users:(("sshd",pid=7,fd=4),("sshd",pid=9,fd=4)) timer:(on,204ms,0)',
    '\t ts sack lastsnd:5 lastrcv:6',
  ].join('\n');

  it('reads endpoints, owners, timer and idle time', () => {
    const [a, b, c] = parseSs(sample);
    assert.deepEqual(a, {
      local: '198.18.5.1:43639',
      peer: '198.18.5.1:40246',
      owners: [{ process: 'node', pid: 31548, fd: 22 }],
      timer: { kind: 'keepalive', remainingMs: 28_000, probes: 0 },
      keepalive: true,
      idleMs: 1300,
    });
    assert.equal(b!.keepalive, false);
    assert.equal(b!.idleMs, 90_500);
    assert.equal(c!.owners.length, 2);
    assert.equal(c!.keepalive, undefined, 'a retransmit timer hides whether keepalive is on');
    assert.ok(isLoopbackSocket(c!));
  });

  it("ss's timer format", () => {
    assert.equal(parseSsTimer('28sec'), 28_000);
    assert.equal(parseSsTimer('3.580ms'), 3580);
    assert.equal(parseSsTimer('580ms'), 580);
    assert.equal(parseSsTimer('1min28sec'), 88_000);
    assert.equal(parseSsTimer('119min'), 119 * 60_000);
    assert.equal(parseSsTimer('3.580sec'), 3580, 'newer ss spells the fraction this way');
    assert.equal(parseSsTimer(''), 0, 'ss prints nothing for a timer due now');
    assert.equal(parseSsTimer('soon'), undefined);
  });

  it('a keepalive timer due now (ss prints it empty) still means keepalive is on', () => {
    const [due] = parseSs(
      '0 0 198.18.5.1:43639 198.18.5.1:40246 users:(("node",pid=1,fd=22)) timer:(keepalive,,0)\n\t lastsnd:2600 lastrcv:2600\n',
    );
    assert.equal(due!.keepalive, true);
    assert.deepEqual(due!.timer, { kind: 'keepalive', remainingMs: 0, probes: 0 });
  });

  it('/proc/net/tcp endpoints', () => {
    assert.equal(hexEndpoint('0100007F:1F90'), '127.0.0.1:8080');
    assert.equal(hexEndpoint('00000000000000000000000001000000:0016'), '[::1]:22');
    assert.equal(hexEndpoint('0000000000000000FFFF00000105120A:0050'), '10.18.5.1:80');
  });
});

describe('profiles', () => {
  it('DESIGN §6 timeouts and expiry', () => {
    const table = Object.fromEntries(
      Object.values(PROFILES).map((p) => [p.name, `${p.idleSeconds} ${p.expiry}`]),
    );
    assert.deepEqual(table, {
      lvs: '900 rst',
      f5: '300 rst',
      'aws-alb': '60 close',
      'aws-nlb': '350 rst',
      'azure-lb': '240 drop',
      'gcp-firewall': '600 drop',
      'gcp-cloud-nat': '1200 drop',
      'gcp-alb': '600 close',
      cloudflare: '100 http-error',
      'linux-conntrack': '432000 drop',
      'aws-nat-gateway': '350 rst',
      'aws-network-firewall': '350 drop',
      'aws-gwlb': '350 drop',
      'kube-proxy-ipvs': '900 rst',
      'kube-proxy-iptables': '86400 drop',
      'azure-redis': '600 close',
      'azure-firewall': '240 rst',
      'azure-firewall-east-west': '300 drop',
      'gcp-ilb': '600 drop',
      'oci-lb': '300 close',
      'haproxy-default': '50 http-error',
      'nginx-default': '60 http-error',
      'envoy-default': '300 http-error',
    });
    assert.match(PROFILES.lvs!.note, /90 s/);
  });

  it('every profile cites its source, and docs/load-balancers.md lists each with it', () => {
    const doc = readFileSync(path.join(ROOT, 'docs', 'load-balancers.md'), 'utf8');
    for (const p of Object.values(PROFILES)) {
      assert.match(p.source ?? '', /^https:\/\//, p.name);
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${p.name}\` |`));
      assert.ok(row, `${p.name} missing from docs/load-balancers.md`);
      assert.match(row, new RegExp(`\\| ${p.idleSeconds} s \\|`), `${p.name}: the doc's number differs`);
      assert.equal(
        /\| (yes|yes \(kernel source\)) \|$/.test(row),
        p.verified === true,
        `${p.name}: checked flag`,
      );
    }
  });

  it('NAME=T overrides the timeout', () => {
    assert.equal(middleboxFromArg('lvs=90s').idleSeconds, 90);
    assert.throws(() => middleboxFromArg('haproxy'), /unknown load balancer profile "haproxy"/);
    assert.throws(() => middleboxFromArg('lvs=500ms'), /whole number of seconds/);
  });
});
