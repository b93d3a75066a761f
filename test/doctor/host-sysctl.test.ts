/**
 * Host findings from the sysctls of the namespace doctor runs in: a
 * namespace with an altered net.ipv4.tcp_keepalive_time, the real CLI run
 * inside it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { requireNetns } from '../../src/netns/capability.js';
import { type Host, Topology } from '../../src/netns/topology.js';
import { FIXTURES, MAIN } from './support.js';

interface Doc {
  host: { keepalive: { idle: number; interval: number; count: number }; conntrackEstablished?: number };
  findings: {
    code: string;
    severity: string;
    layer: string;
    evidence: { path?: string; value?: string };
    fix: string;
    why: string;
  }[];
}

describe('host sysctls in a namespace', () => {
  let topology: Topology | undefined;
  let host: Host;

  before(async () => {
    topology = new Topology();
    host = await topology.addHost('doc');
  });
  after(async () => topology?.destroy());

  function doctor(...args: string[]): Doc & { code: number | null } {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', host.ns, process.execPath, MAIN, 'doctor', '--json', '--no-sockets', ...args],
      {
        encoding: 'utf8',
      },
    );
    assert.ok(r.stdout, r.stderr);
    return { ...(JSON.parse(r.stdout) as Doc), code: r.status };
  }

  it('tcp_keepalive_time above the LB idle: warning alone, error once a listener inherits it', async (t) => {
    if (!requireNetns(t)) return;
    await host.sysctl('net.ipv4.tcp_keepalive_time', 400);
    await host.sysctl('net.ipv4.tcp_keepalive_intvl', 30);
    const alone = doctor('--lb', 'aws-nlb');
    assert.deepEqual(alone.host.keepalive, { idle: 400, interval: 30, count: alone.host.keepalive.count });
    const f = alone.findings.find((x) => x.code === 'kernel-keepalive-too-long')!;
    assert.ok(f, JSON.stringify(alone.findings));
    assert.equal(f.severity, 'warning');
    assert.equal(f.evidence.path, '/proc/sys/net/ipv4/tcp_keepalive_time');
    assert.equal(f.evidence.value, '400');
    assert.equal(f.fix, 'net.ipv4.tcp_keepalive_time = 233');

    assert.equal(alone.code, 0, 'a warning does not fail by default');

    // values/nginx.conf has so_keepalive=on (line 7): now something relies on the sysctl.
    const relied = doctor('--lb', 'aws-nlb', '--nginx', `${FIXTURES}/values/nginx.conf`);
    const g = relied.findings.find((x) => x.code === 'kernel-keepalive-too-long')!;
    assert.equal(g.severity, 'error');
    assert.match(g.evidence.value ?? '', /^400$/);
    assert.equal(relied.code, 1);
  });

  it('below the LB idle: no host finding', async (t) => {
    if (!requireNetns(t)) return;
    await host.sysctl('net.ipv4.tcp_keepalive_time', 200);
    await host.sysctl('net.ipv4.tcp_keepalive_intvl', 30);
    const doc = doctor('--lb', 'aws-nlb');
    assert.deepEqual(
      doc.findings.filter((f) => f.layer === 'host').map((f) => f.code),
      [],
    );
  });

  it('the interval counts too: probes every max(idle, interval)', async (t) => {
    if (!requireNetns(t)) return;
    await host.sysctl('net.ipv4.tcp_keepalive_time', 60);
    await host.sysctl('net.ipv4.tcp_keepalive_intvl', 400);
    const doc = doctor('--lb', 'aws-nlb');
    const f = doc.findings.find((x) => x.code === 'kernel-keepalive-intvl-too-long')!;
    assert.ok(f, JSON.stringify(doc.findings));
    assert.equal(f.evidence.path, '/proc/sys/net/ipv4/tcp_keepalive_intvl');
    // The interval is printed with the probe count it goes with; the idle (60 s) is fine as it is.
    assert.match(f.fix, /^net\.ipv4\.tcp_keepalive_intvl = \d+\nnet\.ipv4\.tcp_keepalive_probes = 3$/);
  });

  it('conntrack established timeout shorter than the kernel probe period', async (t) => {
    if (!requireNetns(t)) return;
    await host.sysctl('net.ipv4.tcp_keepalive_time', 7200);
    await host.sysctl('net.ipv4.tcp_keepalive_intvl', 75);
    try {
      await host.sysctl('net.netfilter.nf_conntrack_tcp_timeout_established', 600);
    } catch {
      t.skip('nf_conntrack is not loaded: no conntrack sysctl in this namespace');
      return;
    }
    const doc = doctor();
    assert.equal(doc.host.conntrackEstablished, 600);
    const f = doc.findings.find((x) => x.code === 'conntrack-forgets-before-probe')!;
    assert.ok(f, JSON.stringify(doc.findings));
    assert.equal(f.evidence.path, '/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established');
    assert.equal(f.evidence.value, '600');
  });
});
