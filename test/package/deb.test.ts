/**
 * The Debian package from scripts/build-deb.sh, installed with `dpkg -i` on
 * this machine and purged again: the keepwire system user, /usr/bin/keepwire
 * finding /etc/keepwire/keepwire.conf on its own, the unit verified where it
 * is installed (with its man page), and nothing of it left after the purge
 * but the system user, which Debian keeps on purge and this test removes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, tempDir } from '../support.js';

const sh = (file: string, args: string[], timeout = 120_000) =>
  spawnSync(file, args, { encoding: 'utf8', timeout, cwd: ROOT });

/** Installed, or removed with its conffiles left (both need a purge). */
const installed = () =>
  /^Status: \S+ ok (installed|config-files)$/m.test(sh('dpkg-query', ['-s', 'keepwire']).stdout);

function unmet(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (dpkg -i)';
  for (const tool of ['dpkg-deb', 'dpkg', 'systemd-analyze', 'adduser'])
    if (sh('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  if (installed()) return 'a keepwire package is already installed on this machine';
  if (existsSync('/etc/keepwire') || existsSync('/usr/bin/keepwire'))
    return '/etc/keepwire or /usr/bin/keepwire exists on this machine';
  return false;
}
const reason = unmet();
if (reason && process.env.CI === 'true') throw new Error(`CI=true: ${reason}`);

const PATHS = [
  '/usr/bin/keepwire',
  '/usr/lib/keepwire',
  '/lib/systemd/system/keepwire.service',
  '/etc/keepwire/keepwire.conf',
  '/etc/default/keepwire',
  '/usr/share/man/man1/keepwire.1.gz',
];

describe('Debian package (dpkg-deb build, dpkg -i, dpkg --purge)', { skip: reason, timeout: 300_000 }, () => {
  const dir = tempDir('keepwire-deb-');
  const userBefore = sh('getent', ['passwd', 'keepwire']).status === 0;
  let deb = '';

  before(() => {
    const built = sh('sh', [path.join(ROOT, 'scripts', 'build-deb.sh'), dir], 240_000);
    assert.equal(built.status, 0, built.stderr);
    deb = built.stdout.trim();
    assert.match(path.basename(deb), /^keepwire_\d+\.\d+\.\d+_[a-z0-9]+\.deb$/);
  });

  after(() => {
    if (installed()) sh('dpkg', ['--purge', 'keepwire']);
    if (!userBefore && sh('getent', ['passwd', 'keepwire']).status === 0)
      sh('deluser', ['--system', 'keepwire']);
    if (!userBefore && sh('getent', ['group', 'keepwire']).status === 0)
      sh('delgroup', ['--system', 'keepwire']);
  });

  it('holds the app with production dependencies only, the unit, a conffile and the man page', () => {
    const list = sh('dpkg-deb', ['--contents', deb]).stdout;
    for (const p of [
      './usr/lib/keepwire/dist/src/cli/main.js',
      './usr/lib/keepwire/node_modules/koffi/package.json',
    ])
      assert.ok(list.includes(p), `${p} is in the package`);
    for (const p of ['node_modules/typescript/', 'node_modules/@biomejs/', 'dist/test/'])
      assert.ok(!list.includes(p), `${p} is not in the package`);
    assert.match(list, /\.\/usr\/bin\/keepwire -> \.\.\/lib\/keepwire\/dist\/src\/cli\/main\.js/);
    const conffiles = sh('dpkg-deb', ['--info', deb, 'conffiles']);
    assert.equal(conffiles.stdout, '/etc/keepwire/keepwire.conf\n/etc/default/keepwire\n');
    const control = sh('dpkg-deb', ['--field', deb, 'Depends']).stdout.trim();
    assert.equal(control, 'nodejs (>= 20.19), adduser');
  });

  it('dpkg -i installs it, creates the keepwire system user, and keepwire finds its configuration', () => {
    const install = sh('dpkg', ['-i', deb], 180_000);
    assert.equal(install.status, 0, install.stdout + install.stderr);
    for (const p of PATHS) assert.ok(existsSync(p), `${p} installed`);
    const user = sh('getent', ['passwd', 'keepwire']).stdout.trim().split(':');
    assert.ok(Number(user[2]) < 1000, `keepwire is a system user (uid ${user[2]})`);
    assert.match(user[6] ?? '', /nologin|false/);

    const version = sh('/usr/bin/keepwire', ['--version']);
    assert.equal(version.status, 0, version.stderr);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(version.stdout.trim(), pkg.version);
    // The unit's ExecStartPre, as the unit's user, with the environment it has: no -c, no $KEEPWIRE_CONF.
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
    const pre = spawnSync(
      'setpriv',
      ['--reuid', 'keepwire', '--regid', 'keepwire', '--init-groups', '/usr/bin/keepwire', 'check', '-q'],
      { encoding: 'utf8', env, timeout: 60_000 },
    );
    assert.equal(pre.status, 0, pre.stderr);
    assert.equal(pre.stdout + pre.stderr, '');
    const loud = spawnSync('/usr/bin/keepwire', ['check'], { encoding: 'utf8', env, timeout: 60_000 });
    assert.match(loud.stdout, /keepwire check: \/etc\/keepwire\/keepwire\.conf: syntax is ok/);
  });

  it('the installed unit passes systemd-analyze verify, man page included', () => {
    const r = sh('systemd-analyze', ['verify', 'keepwire.service'], 60_000);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    // Enabled as dh_installsystemd enables: a wants/ link for multi-user.target.
    assert.ok(existsSync('/etc/systemd/system/multi-user.target.wants/keepwire.service'));
  });

  it('dpkg --purge removes every file, the conffiles and the enablement', () => {
    const purge = sh('dpkg', ['--purge', 'keepwire'], 120_000);
    assert.equal(purge.status, 0, purge.stdout + purge.stderr);
    assert.ok(!installed());
    for (const p of [
      ...PATHS,
      '/etc/keepwire',
      '/etc/systemd/system/multi-user.target.wants/keepwire.service',
    ])
      assert.ok(!existsSync(p), `${p} removed`);
  });
});
