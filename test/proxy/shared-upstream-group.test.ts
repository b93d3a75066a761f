/**
 * Two `stream` servers that proxy to the same `upstream` block share one
 * runtime group, as nginx's servers share the group's peers: least_conn
 * counts, max_conns and passive health are the group's, not per server.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ask,
  closedPort,
  config,
  dial,
  ending,
  group,
  listen,
  namedBackend,
  server,
  start,
  streamServer,
} from './fixtures.js';

const toGroup = { kind: 'group', name: 'app' } as const;

test('least_conn counts a session of one stream server when another server picks', async (t) => {
  const a = await namedBackend('A');
  t.after(() => a.close());
  const b = await namedBackend('B');
  t.after(() => b.close());
  const lb = await start(
    config(
      [streamServer({ proxyPass: toGroup }), streamServer({ proxyPass: toGroup, listens: [listen()] })],
      [group('app', [server(a.port), server(b.port)], { kind: 'least_conn' })],
    ),
  );
  t.after(() => lb.close());
  const first = await dial(lb.ports[0]!);
  t.after(() => first.destroy());
  assert.equal(await ask(first), 'A');
  // A carries one session (held open): the group's least connected is B,
  // whichever server the next client came in on.
  const second = await dial(lb.ports[1]!);
  t.after(() => second.destroy());
  assert.equal(await ask(second), 'B');
});

test('max_conns of a group holds across the stream servers that use it', async (t) => {
  const a = await namedBackend('A');
  t.after(() => a.close());
  const lb = await start(
    config(
      [streamServer({ proxyPass: toGroup }), streamServer({ proxyPass: toGroup, listens: [listen()] })],
      [group('app', [server(a.port, { maxConns: 1 })])],
    ),
  );
  t.after(() => lb.close());
  const first = await dial(lb.ports[0]!);
  t.after(() => first.destroy());
  assert.equal(await ask(first), 'A');
  const second = await dial(lb.ports[1]!);
  await ending(second);
  const [record] = await lb.waitForRecords(1);
  assert.equal(record!.reason, 'connect_failed');
  assert.equal(record!.detail, 'no live upstreams');
  assert.equal(a.accepted.length, 1, 'the full server got no second connection');
});

test('a server marked failed through one stream server is skipped by the other', async (t) => {
  const dead = await closedPort();
  const b = await namedBackend('B');
  t.after(() => b.close());
  const lb = await start(
    config(
      [streamServer({ proxyPass: toGroup }), streamServer({ proxyPass: toGroup, listens: [listen()] })],
      // max_fails=1 fail_timeout=10s (nginx's defaults): one failure marks the server down.
      [group('app', [server(dead), server(b.port)])],
    ),
  );
  t.after(() => lb.close());
  const first = await dial(lb.ports[0]!);
  assert.equal(await ask(first), 'B');
  first.end();
  const [r1] = await lb.waitForRecords(1);
  assert.equal(r1!.tries, 2, 'the first session tried the dead server, then B');
  const second = await dial(lb.ports[1]!);
  assert.equal(await ask(second), 'B');
  second.end();
  const [, r2] = await lb.waitForRecords(2);
  assert.equal(r2!.tries, 1, 'the second session, on the other server, skipped the failed one');
  assert.equal(r2!.upstream, `127.0.0.1:${b.port}`);
});
