/** The timeout chain: each ordering rule, hop by hop, with the fix that restores the order. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { chainFindings, parseChain, readChainArg } from '../../src/doctor/chain.js';
import { tempDir } from '../support.js';

function check(text: string, nginx?: Parameters<typeof parseChain>[1]) {
  return chainFindings(parseChain(text, nginx), text).map((f) => `${f.code} ${f.evidence.where}`);
}

describe('timeout chain ordering', () => {
  it("the issue's example: nginx's upstream pool (60 s default) outlives the app's 5 s keep-alive", () => {
    const text = 'client-pool=4s, aws-alb, nginx, app=5s';
    const findings = chainFindings(parseChain(text), text);
    assert.deepEqual(
      findings.map((f) => `${f.code} ${f.evidence.where}`),
      ['chain-caller-outlives-server --chain hop 3 "nginx" -> hop 4 "app=5s"'],
    );
    assert.match(findings[0]!.why, /client pool outlives the server/);
    assert.equal(
      findings[0]!.fix,
      'server.keepAliveTimeout = 66000; // Node http.Server of app, above the 60s of its caller',
    );
  });

  it('a correctly ordered chain has no finding', () => {
    assert.deepEqual(check('client-pool=30s, aws-alb, nginx=75s/50s, app=65s'), []);
  });

  it('client pool not below an L4 middlebox: the pool reuses a connection the LB forgot', () => {
    assert.deepEqual(check('client-pool=400s, aws-nlb, app=600s'), [
      'chain-pool-outlives-middlebox --chain hop 1 "client-pool=400s" -> hop 2 "aws-nlb"',
    ]);
    const [f] = chainFindings(parseChain('client-pool=400s, aws-nlb, app=600s'), '');
    assert.match(f!.why, /stale pooled connection.*reset/);
    assert.match(f!.fix, /keepAliveTimeout: 315000/);
  });

  it('every middlebox behind an L4 one counts: the tightest on the way decides', () => {
    assert.deepEqual(check('client=300s, gcp-cloud-nat, azure-lb, app=900s'), [
      'chain-pool-outlives-middlebox --chain hop 1 "client=300s" -> hop 3 "azure-lb"',
    ]);
  });

  it('an L7 LB that pools to a backend whose keep-alive is shorter: 502s', () => {
    const findings = chainFindings(parseChain('client=30s, gcp-alb, nginx'), '');
    assert.deepEqual(
      findings.map((f) => `${f.code} ${f.evidence.where}`),
      ['chain-lb-pool-outlives-backend --chain hop 2 "gcp-alb" -> hop 3 "nginx"'],
    );
    assert.equal(findings[0]!.fix, 'keepalive_timeout 660s;');
    assert.match(findings[0]!.why, /502/);
  });

  it('client pool outlives the server directly behind it', () => {
    assert.deepEqual(check('client=90s, app=60s'), [
      'chain-caller-outlives-server --chain hop 1 "client=90s" -> hop 2 "app=60s"',
    ]);
    assert.deepEqual(check('client=59s, app=60s'), []);
    assert.deepEqual(
      check('client=60s, app=60s').length,
      1,
      'equal timeouts race: the caller must close first',
    );
  });

  it("nginx's numbers come from its config when read; no upstream pool means no caller rule", () => {
    const nginx = { keepaliveTimeout: 30, source: 'nginx.conf: keepalive_timeout 30s, no upstream pool' };
    assert.deepEqual(check('client=4s, aws-alb, nginx, app=5s', nginx), [
      'chain-lb-pool-outlives-backend --chain hop 2 "aws-alb" -> hop 3 "nginx"',
    ]);
  });

  it('reads a chain file with comments, one hop per line', (t) => {
    const dir = tempDir('keepwire-chain-', t);
    const file = path.join(dir, 'path.chain');
    writeFileSync(file, '# browser to app\nclient-pool=4s\naws-alb   # 60 s\nnginx\napp=5s\n');
    assert.equal(readChainArg(file), 'client-pool=4s, aws-alb, nginx, app=5s');
  });

  it('refuses hops it cannot place', () => {
    assert.throws(() => parseChain('client=4s, mystery, app=5s'), /"mystery": not a load balancer profile/);
    assert.throws(() => parseChain('app=5s'), /at least two hops/);
    assert.throws(() => parseChain('client=4x, app=5s'), /unknown time unit/);
  });
});
