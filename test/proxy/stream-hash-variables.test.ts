/**
 * `hash KEY` in a stream upstream reads the client's variables
 * (`$remote_addr`, `$remote_port`, `$server_addr`, `$server_port`) from the
 * session's socket when the balancer asks for them (they are read lazily: a
 * round-robin session never pays the getsockname).
 */
import assert from 'node:assert/strict';
import {
  ask,
  config,
  dial,
  group,
  namedBackend,
  onBothPaths,
  server,
  start,
  streamServer,
} from './fixtures.js';

const toGroup = { kind: 'group', name: 'app' } as const;

onBothPaths(
  'hash $remote_port spreads sessions over the servers, hash $remote_addr$server_addr$server_port keeps them on one',
  async (t) => {
    const names = ['A', 'B', 'C', 'D'];
    const backends = await Promise.all(names.map((n) => namedBackend(n)));
    t.after(() => Promise.all(backends.map((b) => b.close())));
    const servers = backends.map((b) => server(b.port));
    const byPort = await start(
      config(
        [streamServer({ proxyPass: toGroup })],
        [group('app', servers, { kind: 'hash', key: '$remote_port', consistent: false })],
      ),
    );
    t.after(() => byPort.close());
    const fixed = await start(
      config(
        [streamServer({ proxyPass: toGroup })],
        [
          group('app', servers, {
            kind: 'hash',
            key: '$remote_addr-$server_addr:$server_port',
            consistent: false,
          }),
        ],
      ),
    );
    t.after(() => fixed.close());
    const reached = async (port: number) => {
      const seen = new Set<string>();
      for (let i = 0; i < 24; i++) {
        const s = await dial(port);
        try {
          seen.add(await ask(s));
        } finally {
          s.destroy();
        }
      }
      return seen;
    };
    // An empty key (a variable read as '') would send every session to one server.
    assert.ok((await reached(byPort.ports[0]!)).size >= 2, 'a new client port picks anew');
    assert.equal(
      (await reached(fixed.ports[0]!)).size,
      1,
      'the same addresses and port pick the same server',
    );
  },
);
