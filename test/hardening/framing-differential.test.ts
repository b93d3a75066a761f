/**
 * The framing differential of issue #22: every request of corpus.ts goes
 * through `keepwire serve` and through real nginx 1.22 with the same server
 * block, each in front of a backend that records every byte. keepwire's
 * answer and what reached the backend must be what the table says, and
 * keepwire must never forward a request nginx did not forward, nor one
 * whose path (percent-decoded, slashes merged, dot segments resolved)
 * falls under `location /admin { return 403; }`.
 *
 * KEEPWIRE_DIFF_PRINT=1 prints what both proxies did for every case (to
 * reconcile the table after a change).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CASES, type FramingCase, type Outcome } from './corpus.js';
import {
  type Exchange,
  exchange,
  fdCount,
  type ProxyProcess,
  type RecordingBackend,
  recordingBackend,
  requireNginx,
  serverBlock,
  settleFds,
  startKeepwire,
  startNginx,
} from './support.js';

const PRINT = process.env.KEEPWIRE_DIFF_PRINT === '1';

/** The path a location is matched on, as nginx derives it (for the access-rule check only). */
export function normalisedPath(target: string): string {
  let path = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  path = path.split('?')[0] ?? '';
  path = path.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
  const out: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`;
}

function alternatives(c: FramingCase): Outcome[] {
  return Array.isArray(c.keepwire) ? c.keepwire : [c.keepwire];
}

function show(o: { statuses: number[]; forwarded: string[] }): string {
  return `statuses [${o.statuses.join(', ')}], forwarded [${o.forwarded.join(' | ')}]`;
}

async function run(
  proxy: ProxyProcess,
  backend: RecordingBackend,
  c: FramingCase,
  expected: number,
): Promise<Exchange & { forwarded: string[] }> {
  await backend.barrier();
  backend.reset();
  const raw = typeof c.raw === 'string' ? Buffer.from(c.raw, 'latin1') : c.raw;
  const ex = await exchange(proxy.port, raw, expected);
  // Whatever the proxy wrote upstream before it closed the client is in the
  // backend's receive queue now; the barrier lets the backend read it.
  await backend.barrier();
  return { ...ex, forwarded: backend.requests.map((r) => r.line) };
}

test('framing differential: keepwire against nginx 1.22 over the #22 corpus', {
  timeout: 600_000,
}, async (t) => {
  if (!requireNginx(t)) return;
  const backend = await recordingBackend();
  t.after(() => backend.close());
  const nginx = await startNginx(t, (port) => serverBlock(port, backend.port));
  const keepwire = await startKeepwire(t, (port) => serverBlock(port, backend.port));
  // One request first, so what keepwire opens lazily is open before the baseline.
  await run(keepwire, backend, CASES[0]!, 1);
  const failed: string[] = [];
  for (const c of CASES) {
    await t.test(c.name, async () => {
      // Per case, so that a leak is charged to the case that made it.
      const fdBefore = fdCount(keepwire.pid);
      const ng = await run(nginx, backend, c, c.nginx.statuses.length);
      const kwExpected = Math.max(...alternatives(c).map((o) => o.statuses.length));
      const kw = await run(keepwire, backend, c, kwExpected);
      if (PRINT)
        console.log(
          `${JSON.stringify(c.name)}\n  nginx:    ${show(ng)} closed=${ng.closed}\n  keepwire: ${show(kw)} closed=${kw.closed} ${kw.ms} ms`,
        );
      const problems: string[] = [];
      if (!keepwire.alive()) problems.push(`keepwire exited: ${keepwire.stderr()}`);
      // What nginx does is part of the table: a different nginx shows here.
      if (show(ng) !== show(c.nginx)) problems.push(`nginx did ${show(ng)}, the table says ${show(c.nginx)}`);
      // Differential: nothing nginx did not forward, nothing under /admin.
      const nginxSaw = [...ng.forwarded];
      for (const f of kw.forwarded) {
        const i = nginxSaw.indexOf(f);
        if (i >= 0) nginxSaw.splice(i, 1);
        else if (c.lenient === undefined) problems.push(`keepwire forwarded "${f}" that nginx did not`);
      }
      for (const r of kw.forwarded) {
        const target = r.split(' ')[1] ?? '';
        if (normalisedPath(target).startsWith('/admin'))
          problems.push(`keepwire forwarded "${r}" past location /admin { return 403; }`);
      }
      if (!alternatives(c).some((o) => show(o) === show(kw)))
        problems.push(
          `keepwire did ${show(kw)}; expected ${alternatives(c).map(show).join(' or ')}` +
            (c.fixedBy ? ` (fixed by ${c.fixedBy})` : ''),
        );
      if (c.mustClose && !kw.closed)
        problems.push(`keepwire still held the connection ${kw.ms} ms after the client's FIN`);
      // The client's connection is gone on both ends: keepwire must have let go of
      // it (and of its upstream connection) too, not hold a detached socket.
      const fds = await settleFds(keepwire.pid, fdBefore, 3_000);
      if (fds > fdBefore)
        problems.push(
          `keepwire holds ${fds - fdBefore} more fd(s) than before the case (${fds} > ${fdBefore})`,
        );
      if (problems.length > 0) {
        failed.push(c.name);
        assert.fail(`${c.name}:\n  ${problems.join('\n  ')}`);
      }
    });
  }
  if (failed.length > 0)
    console.log(`framing differential: ${failed.length} of ${CASES.length} cases failed`);
});
