/**
 * `access_log off` in a stream server: no line for a session that ended
 * cleanly (the short-session hot path, bench/short.ts), but a session that
 * failed is still logged, as nginx's error log would still report it.
 */
import assert from 'node:assert/strict';
import {
  ask,
  backend,
  closedPort,
  config,
  dial,
  ending,
  group,
  listen,
  onBothPaths,
  server,
  sleep,
  start,
  streamServer,
  within,
} from './fixtures.js';

onBothPaths('access_log off logs no clean session and still logs a connect failure', async (t) => {
  const peer = await backend();
  t.after(() => peer.close());
  const dead = await closedPort();
  const lb = await start(
    config(
      [
        streamServer({ proxyPass: { kind: 'group', name: 'up' }, accessLog: false }),
        streamServer({ proxyPass: { kind: 'group', name: 'down' }, accessLog: false, listens: [listen()] }),
      ],
      [group('up', [server(peer.port)]), group('down', [server(dead)])],
    ),
  );
  t.after(() => lb.close());

  const clean = await dial(lb.ports[0]!);
  assert.equal(await ask(clean), '?');
  clean.end();
  await ending(clean);
  // The session is over once the proxy has let go of both sockets.
  await within(
    (async () => {
      while (lb.runtime.liveSessions().length > 0) await sleep(5);
    })(),
    5000,
    'the clean session to end',
  );

  const failed = await dial(lb.ports[1]!);
  await ending(failed);
  const [record] = await lb.waitForRecords(1);
  assert.equal(record!.reason, 'connect_failed');
  assert.equal(lb.records.length, 1, 'the clean session wrote no line');
});
