/**
 * How evidence becomes a verdict, for the cases the namespace LB cannot
 * produce: a middlebox that resets idle sessions by itself (F5's
 * reset-on-timeout), a timeout below --min, contradictory evidence.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConnectionEvidence, ProbeOptions, RawProbe } from '../../src/probe/engine.js';
import { buildReport, renderReport } from '../../src/probe/report.js';

const OPTS: ProbeOptions = {
  host: '192.0.2.10',
  port: 443,
  minMs: 1000,
  maxMs: 900_000,
  precisionMs: 1000,
  connections: 64,
  payload: { kind: 'none' },
  verify: [],
  connectTimeoutMs: 5000,
};

let id = 0;
function ev(
  fields: Partial<ConnectionEvidence> & Pick<ConnectionEvidence, 'role' | 'outcome'>,
): ConnectionEvidence {
  return { id: ++id, round: fields.role === 'grid' ? 1 : 0, detail: '', connectedAtMs: 5, ...fields };
}
const used = (idleMs: number, outcome: ConnectionEvidence['outcome']) =>
  ev({ role: 'grid', outcome, plannedIdleMs: idleMs, idleMs, usedAtMs: idleMs + 5 });
const closed = (idleMs: number, outcome: ConnectionEvidence['outcome'], role: 'grid' | 'watch' = 'grid') =>
  ev({ role, outcome, idleMs });

function raw(evidence: ConnectionEvidence[]): RawProbe {
  return {
    address: OPTS.host,
    rttMs: 0.4,
    ackWaitMs: 1000,
    elapsedMs: 40_000,
    rounds: 1,
    connectionsOpened: evidence.length,
    interrupted: false,
    evidence,
    watchKeepalive: { idle: 1, interval: 1, count: 5 },
    idleAfterRequest: false,
  };
}

test('grid connections reset without use while keepalive ones live on: a middlebox that resets by itself, not the server', () => {
  const r = buildReport(
    OPTS,
    raw([
      used(20_000, 'alive'),
      closed(30_010, 'rst-by-server'),
      closed(30_020, 'rst-by-server'),
      closed(29_990, 'rst-by-server'),
      closed(40_000, 'alive', 'watch'),
      closed(40_000, 'alive', 'watch'),
    ]),
    'none',
  );
  assert.equal(r.enforcedBy, 'middlebox');
  assert.equal(r.server, null);
  assert.equal(r.middlebox?.closesUnused, true);
  assert.equal(r.expiry, 'rst');
  assert.ok(Math.abs(r.idleTimeout!.estimateMs - 30_000) <= 20);
  assert.match(renderReport(r), /closes idle sessions by itself/);
});

test('grid and keepalive connections closed together without use: the server', () => {
  const r = buildReport(
    OPTS,
    raw([used(2_000, 'alive'), closed(3_001, 'fin'), closed(3_002, 'fin'), closed(3_003, 'fin', 'watch')]),
    'none',
  );
  assert.equal(r.enforcedBy, 'server');
  assert.equal(r.expiry, 'fin');
  assert.equal(r.middlebox, null);
  assert.equal(r.server?.connections, 3);
  assert.equal(r.recommendation?.basis, 'server');
  assert.match(renderReport(r), /TCP keepalive cannot prevent that/);
});

test('the shortest idle tried already fails: below --min, and no recommendation', () => {
  const r = buildReport(OPTS, raw([used(1_000, 'rst'), used(2_800, 'rst')]), 'none');
  assert.equal(r.verdict, 'below-min');
  assert.equal(r.expiry, 'rst');
  assert.equal(r.recommendation, null);
  assert.match(renderReport(r), /below --min 1\.0s/);
});

test('a survivor beyond a failure is flagged as inconsistent, not hidden', () => {
  const r = buildReport(OPTS, raw([used(4_600, 'drop'), used(6_400, 'alive')]), 'none');
  assert.equal(r.verdict, 'measured');
  assert.ok(r.notes.some((n) => n.startsWith('inconsistent evidence')));
});

test('a keepalive whose first probe comes after the timeout is reported as not surviving, with the reason', () => {
  const spec = { enable: true, idle: 6 };
  const r = buildReport(
    { ...OPTS, verify: [{ text: '6s::', spec }] },
    raw([
      used(4_600, 'alive'),
      used(6_400, 'rst'),
      ev({ role: 'verify', outcome: 'rst', spec: '6s::', idleMs: 6_100, detail: 'ECONNRESET without use' }),
      ev({ role: 'verify', outcome: 'rst', spec: '6s::', idleMs: 6_100, detail: 'ECONNRESET without use' }),
    ]),
    'none',
  );
  assert.equal(r.verify[0]?.survived, false);
  assert.match(
    r.verify[0]!.detail,
    /first probe comes only after 6s idle, later than the 4\.6s the path was seen to allow/,
  );
});

test('--payload http: answers summarised and rendered; a 4xx or a non-HTTP answer is a note, not a failure', () => {
  const opts: ProbeOptions = { ...OPTS, host: '2001:db8::10', port: 8080, payload: { kind: 'http' } };
  const ok = { statusLine: 'HTTP/1.1 200 OK', status: 200, keepAlive: true };
  const bad = { statusLine: 'HTTP/1.1 400 Bad Request', status: 400, keepAlive: false };
  const answered = (idleMs: number, http: typeof ok) => ({ ...used(idleMs, 'alive'), http });
  const r = buildReport(
    opts,
    {
      ...raw([
        answered(1000, ok),
        answered(2000, ok),
        answered(3000, bad),
        used(4000, 'alive'),
        used(5000, 'rst'),
      ]),
      address: opts.host,
    },
    'http',
  );
  assert.equal(r.verdict, 'measured');
  assert.deepEqual(r.http, {
    answers: [
      { ...ok, connections: 2 },
      { ...bad, connections: 1 },
    ],
    unanswered: 1,
    idleAfterRequest: false,
  });
  assert.ok(
    r.notes.some((n) =>
      /answered the probe's HEAD \/ with HTTP\/1\.1 400 Bad Request on 1 connection/.test(n),
    ),
  );
  const text = renderReport(r);
  assert.match(text, /^keepwire probe \[2001:db8::10\]:8080 — /);
  assert.match(
    text,
    /\nHTTP: {9}HEAD \/ answered HTTP\/1\.1 200 OK, keep-alive \(2 connections\); HTTP\/1\.1 400 Bad Request, then closed \(1 connection\); no answer \(1 connection\)\n/,
  );
  assert.match(
    text,
    /\nHTTP: {9}idle measured on fresh connections \(the first answer closed the connection\)\n/,
  );
  assert.match(text, /check it here: keepwire probe \[2001:db8::10\]:8080 --verify-keepalive/);

  const ssh = { statusLine: '"SSH-2.0-OpenSSH_9.2"', status: 0, keepAlive: false };
  const notHttp = buildReport(opts, raw([answered(1000, ssh), used(5000, 'rst')]), 'http');
  assert.ok(
    notHttp.notes.some((n) => /did not answer HEAD \/ with HTTP \(it sent "SSH-2\.0-OpenSSH_9\.2"\)/.test(n)),
  );
  assert.equal(buildReport(OPTS, raw([used(1000, 'alive'), used(5000, 'rst')]), 'none').http, null);
});
