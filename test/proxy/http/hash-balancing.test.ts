/**
 * `hash KEY` in an HTTP upstream reads the request's variables
 * (`$request_uri`, `$remote_addr`, `$host`) when the balancer asks for them:
 * `Tries` makes them only for a group that hashes (round-robin and the
 * others get none made per attempt), so a hashing group must still get
 * them: the same key reaches the same server, different keys spread.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fetchRaw,
  get,
  httpConfig,
  httpGroup,
  httpServer,
  okResponse,
  rawUpstream,
  server,
  startHttp,
} from './fixtures.js';

test('hash $request_uri: one URI always reaches one server, different URIs spread over the group', async (t) => {
  const names = ['A', 'B', 'C', 'D'];
  const ups = await Promise.all(names.map((n) => rawUpstream((_req, respond) => respond(okResponse(n)))));
  t.after(() => Promise.all(ups.map((u) => u.close())));
  for (const consistent of [false, true]) {
    const lb = await startHttp(
      httpConfig(
        [httpServer()],
        [
          httpGroup(
            'app',
            ups.map((u) => server(u.port)),
            { balancing: { kind: 'hash', key: '$request_uri', consistent } },
          ),
        ],
      ),
    );
    try {
      const answer = async (path: string) => {
        const res = await fetchRaw(lb.port, get(path));
        assert.equal(res.status, 200);
        return res.body.toString();
      };
      const byUri = new Map<string, string>();
      for (let i = 0; i < 24; i++) byUri.set(`/item/${i}`, await answer(`/item/${i}`));
      // An empty key (no variables made) would send every request to one server.
      assert.ok(new Set(byUri.values()).size >= 2, `${consistent ? 'consistent ' : ''}hash: URIs spread`);
      for (const [path, first] of byUri) assert.equal(await answer(path), first, `${path} stays on ${first}`);
    } finally {
      await lb.close();
    }
  }
});
