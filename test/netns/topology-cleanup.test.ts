import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cleanupStale, createLbTopology, listNamespaces, Topology } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';

const run = promisify(execFile);
const LIBRARY = fileURLToPath(new URL('../../src/index.js', import.meta.url));
const NETNS = fileURLToPath(new URL('../../src/netns/index.js', import.meta.url));

test('systemDefaults() reads the keepalive sysctls of its own network namespace', async (t) => {
  if (!requireNetns(t)) return;
  const topo = new Topology();
  try {
    const host = await topo.addHost('h');
    await host.sysctl('net.ipv4.tcp_keepalive_time', 33);
    await host.sysctl('net.ipv4.tcp_keepalive_intvl', 4);
    await host.sysctl('net.ipv4.tcp_keepalive_probes', 5);
    const script = `import(${JSON.stringify(LIBRARY)}).then((k) => console.log(JSON.stringify(k.systemDefaults())))`;
    const { stdout } = await host.exec(process.execPath, ['-e', script]);
    assert.deepEqual(JSON.parse(stdout), { idle: 33, interval: 4, count: 5 });
  } finally {
    await topo.destroy();
  }
});

test('destroy() removes every namespace and kills processes started in them', async (t) => {
  if (!requireNetns(t)) return;
  const lb = await createLbTopology({ lbIdleSeconds: 3, expiry: 'drop' });
  const names = [...lb.topology.hosts.values()].map((h) => h.ns);
  const sleeper = lb.backend.spawn('sleep', ['60']);
  await lb.destroy();
  assert.ok(sleeper.exitCode !== null || sleeper.signalCode !== null, 'the process was killed');
  const left = (await listNamespaces()).map((n) => n.ns);
  for (const name of names) assert.ok(!left.includes(name), `${name} is gone`);
});

test('after a run is killed mid-scenario, cleanupStale() removes its namespaces, veths and nft tables', async (t) => {
  if (!requireNetns(t)) return;
  const script = `
    const { createLbTopology } = await import(${JSON.stringify(NETNS)});
    const lb = await createLbTopology({ lbIdleSeconds: 3, expiry: 'rst' });
    lb.backend.spawn('sleep', ['60']);
    console.log(JSON.stringify([...lb.topology.hosts.values()].map((h) => h.ns)));
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const names = JSON.parse(line) as string[];
  child.kill('SIGKILL');
  await once(child, 'exit');
  const before = (await listNamespaces()).map((n) => n.ns);
  for (const name of names) assert.ok(before.includes(name), `${name} was left behind by the killed run`);

  const removed = await cleanupStale();
  for (const name of names) assert.ok(removed.includes(name), `${name} was removed`);
  const after = (await listNamespaces()).map((n) => n.ns);
  for (const name of names) assert.ok(!after.includes(name), `${name} is gone`);
  // veth ends and nft tables lived inside the namespaces; nothing of ours is in the root namespace.
  const { stdout: links } = await run('ip', ['-o', 'link', 'show']);
  assert.ok(!/\bkw[0-9a-f]{8}[ab]\b/.test(links), `no keepwire veth left in the root namespace:\n${links}`);
  const { stdout: tables } = await run('nft', ['list', 'tables']);
  assert.ok(!tables.includes('keepwire_lb'), 'no keepwire nft table in the root namespace');
});
