/**
 * Node 26's `setKeepAlive({ enable, initialDelay, interval, count })`:
 * detection must say 'native' exactly when this Node's setKeepAlive, called
 * with the options form, leaves all three values in the kernel, and the
 * native path must set them by itself (no libc repair behind it).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { applyKeepalive, nativeKeepaliveSupported, readKeepalive } from '../../src/index.js';
import { compileKeepalive } from '../../src/keepalive/applier.js';

let server: net.Server;
let port: number;
const sockets: net.Socket[] = [];

before(async () => {
  server = net.createServer((s) => sockets.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(() => {
  for (const s of sockets) s.destroy();
  server.close();
});

async function connected(): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  sockets.push(s);
  await once(s, 'connect');
  return s;
}

/** Whether Node itself (no keepwire code) sets idle, interval and count from the options form. */
async function nodeSetsAllThree(): Promise<boolean> {
  const s = await connected();
  s.setKeepAlive({ enable: true, initialDelay: 7000, interval: 3000, count: 4 } as unknown as boolean);
  const held = readKeepalive(s);
  return held.enabled && held.idle === 7 && held.interval === 3 && held.count === 4;
}

/** What is known of Node releases: 20 is end-of-life without it; 26.12 was observed with it. */
function knownToHaveIt(version: string): boolean | undefined {
  const [major = 0, minor = 0] = version.slice(1).split('.').map(Number);
  if (major <= 20) return false;
  if (major > 26 || (major === 26 && minor >= 12)) return true;
  return undefined;
}

test(`Node ${process.version}: detection says native exactly when setKeepAlive's options form reaches the kernel`, async () => {
  const actual = await nodeSetsAllThree();
  assert.equal(nativeKeepaliveSupported, actual, `setKeepAlive options form works: ${actual}`);
  const known = knownToHaveIt(process.version);
  if (known !== undefined)
    assert.equal(actual, known, `Node ${process.version} is known to ${known ? 'have' : 'lack'} it`);
});

test(`Node ${process.version}: a full spec goes native where Node has it, and the native call alone sets all three`, async () => {
  const s = await connected();
  assert.equal(
    applyKeepalive(s, { idle: 20, interval: 5, count: 3 }),
    nativeKeepaliveSupported ? 'native' : 'ffi',
  );
  // The compiled applier applies to a fresh socket without any read-back or
  // libc repair: what the kernel holds is what its backend alone did.
  const applier = compileKeepalive('so_keepalive', { enable: true, idle: 11, interval: 4, count: 6 });
  assert.equal(applier.backend, nativeKeepaliveSupported ? 'native' : 'ffi');
  const fresh = await connected();
  applier.apply(fresh);
  assert.deepEqual(readKeepalive(fresh), { enabled: true, idle: 11, interval: 4, count: 6, userTimeout: 0 });
});

test('a partial spec never goes native (Node would force interval 1 s and 10 probes into the missing fields)', async () => {
  const s = await connected();
  assert.equal(applyKeepalive(s, { idle: 9, count: 2 }), 'ffi');
  assert.equal(compileKeepalive('proxy_socket_keepalive', { enable: true, idle: 9 }).backend, 'ffi');
});
