/**
 * `doctor --netns PID|NAME`: a namespace made by the test (kw-doctor-*) with
 * keepalive sysctls unlike the host's is audited from the host, found by its
 * name and by the pid of a process inside it; every layer of the report is
 * that namespace's.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { withoutNetns } from '../../src/doctor/netns.js';
import { requireNetns } from '../require-netns.js';
import { MAIN } from './support.js';

const NAME = `kw-doctor-${process.pid}`;
const children: ChildProcess[] = [];
let made = false;

after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (made) spawnSync('ip', ['netns', 'del', NAME]);
});

function doctor(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, 'doctor', '--lb', 'lvs', '--json', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

type Report = {
  netns?: string;
  host: { keepalive: { idle: number; interval: number; count: number } };
  sockets?: { local: string }[];
};

describe('doctor --netns', () => {
  it('drops --netns from the child command line in both spellings', () => {
    assert.deepEqual(withoutNetns(['doctor', '--netns', 'x', '--json', '--netns=y', '--lb', 'lvs']), [
      'doctor',
      '--json',
      '--lb',
      'lvs',
    ]);
  });

  it('audits a namespace by name and by the pid of a process in it: its own sysctls and sockets', async (t) => {
    if (!requireNetns(t)) return;
    execFileSync('ip', ['netns', 'add', NAME]);
    made = true;
    const sysctl = (k: string, v: number) =>
      execFileSync('ip', ['netns', 'exec', NAME, 'sysctl', '-qw', `net.ipv4.tcp_keepalive_${k}=${v}`]);
    sysctl('time', 1234);
    sysctl('intvl', 56);
    sysctl('probes', 7);
    execFileSync('ip', ['-n', NAME, 'link', 'set', 'lo', 'up']);
    const host = Number(readFileSync('/proc/sys/net/ipv4/tcp_keepalive_time', 'utf8'));
    assert.notEqual(host, 1234, 'the host must differ for the test to mean anything');

    // A process inside holding an established loopback connection on a port only that namespace has.
    const holder = spawn(
      'ip',
      [
        'netns',
        'exec',
        NAME,
        process.execPath,
        '-e',
        "const net = require('net'); const held = []; const srv = net.createServer((s) => { held.push(s); console.log('ready'); }).listen(47123, '127.0.0.1', () => held.push(net.connect(47123, '127.0.0.1')));",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(holder);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('holder not ready within 20 s')), 20_000);
      holder.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      holder.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
    // `ip netns exec` execs node in place: the holder's pid is the process inside.
    const pid = holder.pid!;

    for (const target of [NAME, String(pid)]) {
      const r = doctor('--netns', target);
      assert.ok(r.status === 0 || r.status === 1, `--netns ${target}: ${r.stderr}`);
      const report = JSON.parse(r.stdout) as Report;
      assert.deepEqual(report.host.keepalive, { idle: 1234, interval: 56, count: 7 }, `--netns ${target}`);
      assert.match(
        report.netns ?? '',
        target === NAME ? new RegExp(`network namespace ${NAME}`) : new RegExp(`pid ${pid}`),
      );
      assert.ok(
        report.sockets?.some((s) => s.local === '127.0.0.1:47123'),
        `--netns ${target} sees the namespace's connection`,
      );
    }
    // And without --netns, the host's own values.
    const own = JSON.parse(doctor('--no-sockets').stdout) as Report;
    assert.equal(own.host.keepalive.idle, host);
    assert.equal(own.netns, undefined);
  });

  it('a namespace or process that does not exist is a usage error (exit 2), one line', () => {
    for (const target of ['kw-doctor-none', '999999999']) {
      const r = doctor('--netns', target);
      assert.equal(r.status, 2, r.stdout);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^keepwire: --netns /);
    }
  });
});
