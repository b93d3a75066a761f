/**
 * Live sockets: a child process holds TCP sockets with known keepalive
 * settings (one with none) in a namespace on a non-loopback address.
 * `--pid` must report the exact values read back from the kernel through
 * pidfd_getfd, and the host-wide view (ss) must list them with idle times.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { netnsAvailable } from '../../src/netns/capability.js';
import { type Host, Topology } from '../../src/netns/topology.js';
import { requireNetns } from '../require-netns.js';
import { MAIN, ROOT } from './support.js';

const HOLDER = path.join(ROOT, 'dist', 'test', 'doctor', 'socket-holder.js');
const ADDRESS = '198.18.7.1';

interface Held {
  pid: number;
  port: number;
  sockets: { name: string; localPort: number }[];
}

interface Doc {
  process?: {
    pid: number;
    error?: string;
    sockets: {
      fd: number;
      local: string;
      peer: string;
      keepalive: boolean;
      idle: number;
      interval: number;
      count: number;
      userTimeout: number;
      idleMs: number;
    }[];
  };
  sockets?: {
    local: string;
    peer: string;
    owners: { pid: number }[];
    keepalive?: boolean;
    idleMs?: number;
    timer?: { kind: string };
  }[];
  findings: {
    code: string;
    severity: string;
    evidence: { socket?: { local: string; peer: string; pid?: number } };
  }[];
}

describe('live sockets', () => {
  let topology: Topology | undefined;
  let host: Host;
  let held: Held;

  before(async () => {
    if (!netnsAvailable().ok) return;
    topology = new Topology();
    host = await topology.addHost('sock');
    // A local non-loopback address (no dummy module on every kernel; veth is always there).
    await host.exec('ip', ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    await host.exec('ip', ['addr', 'add', `${ADDRESS}/24`, 'dev', 'v0']);
    await host.exec('ip', ['link', 'set', 'v0', 'up']);
    await host.exec('ip', ['link', 'set', 'v1', 'up']);
    const child = host.spawn(process.execPath, [HOLDER, ADDRESS]);
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    held = JSON.parse(line) as Held;
    // Idle past the 2 s LB of the tests.
    await sleep(2600);
  });
  after(async () => topology?.destroy());

  function doctor(
    args: string[],
    opts: { withoutPtrace?: boolean } = {},
  ): Doc & { code: number | null; stderr: string } {
    const doctorArgs = [MAIN, 'doctor', '--json', '--lb-idle', '2s', ...args];
    // Without CAP_SYS_PTRACE, root may not take descriptors from the holder (it is not dumpable).
    // That run stays in this namespace: --pid reaches the holder by pid wherever it lives.
    const r = opts.withoutPtrace
      ? spawnSync(
          'setpriv',
          ['--bounding-set', '-sys_ptrace', '--inh-caps', '-sys_ptrace', process.execPath, ...doctorArgs],
          { encoding: 'utf8' },
        )
      : spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, ...doctorArgs], { encoding: 'utf8' });
    assert.ok(r.stdout, r.stderr);
    return { ...(JSON.parse(r.stdout) as Doc), code: r.status, stderr: r.stderr };
  }

  const port = (name: string) => held.sockets.find((s) => s.name === name)!.localPort;

  it('--pid reads the exact TCP_KEEPIDLE/INTVL/CNT/USER_TIMEOUT of every socket of the process', (t) => {
    if (!requireNetns(t)) return;
    const doc = doctor(['--pid', String(held.pid), '--no-sockets']);
    const sockets = doc.process!.sockets;
    assert.equal(sockets.length, 6, 'three client sockets and the three the server accepted');
    const mine = (name: string) => sockets.find((s) => s.local === `${ADDRESS}:${port(name)}`)!;
    assert.equal(mine('none').keepalive, false);
    const short = mine('short');
    assert.deepEqual(
      [short.keepalive, short.idle, short.interval, short.count, short.userTimeout],
      [true, 1, 1, 3, 5000],
    );
    const long = mine('long');
    assert.deepEqual(
      [long.keepalive, long.idle, long.interval, long.count, long.userTimeout],
      [true, 500, 20, 4, 0],
    );
    assert.ok(mine('none').idleMs >= 2000, `idle ${mine('none').idleMs} ms`);

    const at = (code: string) =>
      doc.findings
        .filter((f) => f.code === code)
        .map((f) => f.evidence.socket!.local)
        .sort();
    assert.ok(at('pid-socket-no-keepalive').includes(`${ADDRESS}:${port('none')}`));
    assert.equal(
      at('pid-socket-no-keepalive').length,
      4,
      'the unset client socket and the three accepted ones',
    );
    assert.deepEqual(at('pid-socket-keepalive-too-long'), [`${ADDRESS}:${port('long')}`]);
    assert.ok(
      doc.findings.filter((f) => f.code.startsWith('pid-')).every((f) => f.evidence.socket!.pid === held.pid),
    );
    assert.equal(doc.code, 1);
  });

  it('the host-wide view lists the sockets with their owner, keepalive timer and idle time', (t) => {
    if (!requireNetns(t)) return;
    const doc = doctor([]);
    const listed = (name: string) => doc.sockets!.find((s) => s.local === `${ADDRESS}:${port(name)}`)!;
    for (const name of ['none', 'short', 'long']) {
      const s = listed(name);
      assert.ok(s, `${name} listed`);
      assert.equal(s.owners[0]!.pid, held.pid);
      assert.ok((s.idleMs ?? 0) >= 2000, `${name} idle ${s.idleMs}`);
    }
    assert.equal(listed('none').keepalive, false);
    assert.equal(listed('long').timer?.kind, 'keepalive');
    const codes = (code: string) =>
      doc.findings.filter((f) => f.code === code).map((f) => f.evidence.socket!.local);
    assert.ok(codes('socket-idle-no-keepalive').includes(`${ADDRESS}:${port('none')}`));
    assert.ok(!codes('socket-idle-no-keepalive').includes(`${ADDRESS}:${port('short')}`));
    assert.deepEqual(codes('socket-keepalive-too-long'), [`${ADDRESS}:${port('long')}`]);
  });

  it('without ptrace rights --pid says so and fails', (t) => {
    if (!requireNetns(t)) return;
    const doc = doctor(['--pid', String(held.pid), '--no-sockets'], { withoutPtrace: true });
    const denied = doc.findings.find((f) => f.code === 'pid-access-denied');
    assert.ok(denied, JSON.stringify(doc.findings));
    assert.match(doc.process!.error!, /ptrace/);
    assert.equal(doc.code, 1);
  });
});
