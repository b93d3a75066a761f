/**
 * Reload: new sessions follow the new configuration, live sessions finish
 * on the old one, a shared listen address never stops accepting, and a
 * configuration that cannot start changes nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigStartError } from '../../src/serve/index.js';
import {
  ask,
  closedPort,
  config,
  dial,
  ending,
  listen,
  namedBackend as named,
  passTo,
  start,
  streamServer,
  within,
} from '../proxy/fixtures.js';

test('reload: new sessions reach the new upstream, the live one stays on the old, no connect refused meanwhile', async () => {
  const a = await named('A');
  const b = await named('B');
  const port = await closedPort();
  const lb = await start(config([streamServer({ listens: [listen(port)], proxyPass: passTo(a.port) })]));
  try {
    const old = await dial(port);
    assert.equal(await ask(old), 'A');

    let refused = 0;
    let probing = true;
    const probes = (async () => {
      for (let i = 0; i < 200 && probing; i++) {
        try {
          (await dial(port)).destroy();
        } catch {
          refused++;
        }
      }
    })();
    await lb.runtime.apply(config([streamServer({ listens: [listen(port)], proxyPass: passTo(b.port) })]));
    probing = false;
    await probes;
    assert.equal(refused, 0, 'the listening socket was handed over, not reopened');

    const fresh = await dial(port);
    assert.equal(await ask(fresh), 'B');
    assert.equal(await ask(old), 'A', 'the live session continues on its upstream');
    old.destroy();
    fresh.destroy();
  } finally {
    await lb.close();
    await a.close();
    await b.close();
  }
});

test('reload: a removed listen stops accepting while its live session goes on; an added one starts', async () => {
  const a = await named('A');
  const [p1, p2] = [await closedPort(), await closedPort()];
  const lb = await start(config([streamServer({ listens: [listen(p1)], proxyPass: passTo(a.port) })]));
  try {
    const live = await dial(p1);
    assert.equal(await ask(live), 'A');
    await lb.runtime.apply(config([streamServer({ listens: [listen(p2)], proxyPass: passTo(a.port) })]));
    await assert.rejects(dial(p1), { code: 'ECONNREFUSED' });
    assert.equal(await ask(await dial(p2)), 'A');
    assert.equal(await ask(live), 'A');
    live.destroy();
  } finally {
    await lb.close();
    await a.close();
  }
});

test('reload that cannot start (address in use) is rejected and the running configuration stays', async () => {
  const a = await named('A');
  const b = await named('B');
  const port = await closedPort();
  const lb = await start(config([streamServer({ listens: [listen(port)], proxyPass: passTo(a.port) })]));
  try {
    const bad = config([
      streamServer({ listens: [listen(port)], proxyPass: passTo(b.port) }),
      streamServer({ listens: [listen(b.port)], proxyPass: passTo(b.port) }), // b's own port: EADDRINUSE
    ]);
    await assert.rejects(
      lb.runtime.apply(bad),
      (e: unknown) => e instanceof ConfigStartError && /EADDRINUSE/.test(e.message),
    );
    const s = await dial(port);
    assert.equal(await ask(s), 'A');
    s.destroy();
  } finally {
    await lb.close();
    await a.close();
    await b.close();
  }
});

test('shutdown: stops accepting at once, lets a finishing session drain, resets the rest after the grace period', async () => {
  const a = await named('A');
  const port = await closedPort();
  const lb = await start(config([streamServer({ listens: [listen(port)], proxyPass: passTo(a.port) })]));
  try {
    const finishing = await dial(port);
    const lingering = await dial(port);
    assert.equal(await ask(finishing), 'A');
    assert.equal(await ask(lingering), 'A');
    const began = Date.now();
    const done = lb.runtime.shutdown(1500);
    await assert.rejects(dial(port), { code: 'ECONNREFUSED' });
    setTimeout(() => finishing.end(), 300);
    const lingerEnd = ending(lingering, 5000);
    const result = await within(done, 5000, 'shutdown');
    const took = Date.now() - began;
    assert.deepEqual(result, { drained: 1, reset: 1 });
    assert.ok(took >= 1400 && took < 3000, `took ${took}`);
    assert.deepEqual(await lingerEnd, { kind: 'error', code: 'ECONNRESET' });
    const reasons = lb.records.map((r) => r.reason).sort();
    assert.deepEqual(reasons, ['client_closed', 'shutdown']);
  } finally {
    await a.close();
  }
});
