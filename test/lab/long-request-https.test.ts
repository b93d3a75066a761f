/**
 * The seed's incident over HTTPS (`keepwire lab long-request-https`): the
 * client speaks TLS through the L4 LB to keepwire's (and nginx's)
 * `listen ... ssl`. The outcome is the cleartext one: without so_keepalive
 * the LB forgets the silent session and the answer is lost; with it, probes
 * on the TCP socket under TLS keep the session and the answer arrives.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLab, SCENARIOS } from '../../src/lab/index.js';
import { requireNetns } from '../require-netns.js';

test('long-request over HTTPS: lost without so_keepalive, saved by so_keepalive on the TCP socket under TLS (keepwire and nginx)', async (t) => {
  if (!requireNetns(t)) return;
  const report = await runLab(SCENARIOS['long-request-https']!, { lbIdleS: 3, expiry: 'rst' });
  const bad = report.results
    .filter((r) => !r.ok)
    .map((r) => `${r.variant}: expected ${r.expected}, got ${r.observed} (${r.detail})`);
  assert.deepEqual(bad, [], bad.join('\n'));
  if (process.env.CI === 'true')
    assert.deepEqual(report.skipped, [], 'CI runs every variant (nginx and openssl must be installed)');
  const byName = Object.fromEntries(report.results.map((r) => [r.variant, r]));
  const kinds = (variant: string) => byName[variant]?.timeline.map((e) => e.kind) ?? [];
  // keepwire's variants run wherever the lab runs; nginx's only where nginx is installed.
  assert.ok(byName['keepwire-https-plain'] && byName['keepwire-https-so_keepalive'], 'keepwire variants ran');
  assert.equal(byName['keepwire-https-so_keepalive']!.observed, 'response');
  assert.match(byName['keepwire-https-so_keepalive']!.detail, /HTTP 200/);
  // Evidence: the LB forgot the plain session; probes kept the so_keepalive one.
  assert.ok(
    kinds('keepwire-https-plain').includes('lb-expired'),
    'conntrack showed the LB forgetting the session',
  );
  assert.ok(kinds('keepwire-https-so_keepalive').includes('probe'), 'probes from the backend were captured');
  assert.ok(
    !kinds('keepwire-https-so_keepalive').includes('lb-expired'),
    'and the LB never forgot that session',
  );
});
