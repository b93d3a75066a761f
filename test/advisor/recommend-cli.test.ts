/**
 * `keepwire recommend` as users call it: --lb PROFILE or --lb-idle T, --for
 * TARGET, --json; usage errors are one line and exit 2.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from '../../src/cli/program.js';
import { recommend } from '../../src/keepalive/recommend.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(argv, {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
  });
  return { code, out, err };
}

test('recommend --lb aws-nlb --for sysctl prints the settings for the profile idle (350 s)', async () => {
  const r = await cli('recommend', '--lb', 'aws-nlb', '--for', 'sysctl');
  assert.equal(r.code, 0, r.err);
  const k = recommend(350).keepalive;
  assert.match(r.out, new RegExp(`^net\\.ipv4\\.tcp_keepalive_time = ${k.idle}$`, 'm'));
  assert.match(r.out, new RegExp(`^net\\.ipv4\\.tcp_keepalive_intvl = ${k.interval}$`, 'm'));
});

test('recommend --lb NAME=T overrides the profile idle, as doctor does', async () => {
  const r = await cli('recommend', '--lb', 'aws-nlb=600s', '--for', 'haproxy', '--json');
  assert.equal(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out) as { lbIdleTimeout: number }).lbIdleTimeout, 600);
});

test('recommend without --for keeps its reasoning output, now naming the profile and the application pings', async () => {
  const r = await cli('recommend', '--lb', 'azure-lb');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^LB idle timeout 240s \(azure-lb\):/);
  assert.match(r.out, /application pings +every \d+s/);
  const j = await cli('recommend', '--lb-idle', '90s', '--json');
  assert.deepEqual(JSON.parse(j.out), JSON.parse(JSON.stringify(recommend(90))));
});

test('recommend usage errors are one line with a hint and exit 2', async () => {
  const none = await cli('recommend', '--for', 'nginx');
  assert.equal(none.code, 2);
  assert.match(
    none.err,
    /^keepwire: recommend needs the load balancer: --lb-idle TIME or --lb PROFILE\nhint: /,
  );
  const unknown = await cli('recommend', '--lb', 'nope');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown load balancer profile "nope"/);
  const both = await cli('recommend', '--lb', 'aws-nlb', '--lb-idle', '60s');
  assert.equal(both.code, 2);
  const target = await cli('recommend', '--lb-idle', '60s', '--for', 'iis');
  assert.equal(target.code, 2);
  assert.match(target.err, /Allowed choices are nginx, haproxy, envoy/);
  const tiny = await cli('recommend', '--lb-idle', '1s', '--for', 'nginx');
  assert.equal(tiny.code, 2);
  assert.doesNotMatch(tiny.err, /\n\s+at /, 'no stack trace');
});
