/**
 * The access log line is serialised by hand (requestJson): it must be the
 * text JSON.stringify gives for the same record, whatever a client put in
 * the request line and Host.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RequestRecord, requestJson } from '../../../src/proxy/http/index.js';

function record(over: Partial<RequestRecord> = {}): RequestRecord {
  const r: RequestRecord = {
    msg: 'request',
    listen: '127.0.0.1:8080',
    client: '127.0.0.1:51234',
    method: 'GET',
    path: '/a?b=c',
    host: 'example.test',
    status: 200,
    bytesSent: 98,
    bytesReceived: 0,
    upstream: '127.0.0.1:9000',
    upstreamConnect: 'reused',
    tries: 1,
    retries: 0,
    timings: { totalMs: 3 },
    reason: 'ok',
    ...over,
  };
  return r;
}

test('the same text as JSON.stringify for ordinary and odd records', () => {
  const latin1 = Buffer.from([0x2f, 0xe9, 0xff, 0x80, 0x22, 0x5c, 0x7f]).toString('latin1');
  const usual = record({ timings: { totalMs: 2, headerMs: 1 } });
  usual.upstreamStatus = 200;
  const usualNoHeader = record();
  usualNoHeader.upstreamStatus = 204;
  const cases: RequestRecord[] = [
    usual,
    usualNoHeader,
    record(),
    record({ upstream: null, upstreamConnect: null, status: 0, reason: 'client_closed' }),
    record({ upstreamConnect: 'new', timings: { totalMs: 12, connectMs: 1, headerMs: 10 } }),
    record({ timings: { totalMs: 5, headerMs: 4 } }),
    record({ path: '/"quoted"\\back\\slash', host: 'h"o\\st' }),
    record({ path: latin1, host: '\u0001\u001f\t' }),
    record({ method: 'M-SEARCH', path: '*', host: '' }),
  ];
  const withTail = record({ status: 502, reason: 'connect_failed' });
  withTail.upstreamStatus = 503;
  withTail.detail = 'connect failed: ECONNREFUSED "x" \n\u2028 \ud800';
  cases.push(withTail);
  const detailOnly = record();
  detailOnly.detail = 'no location matches';
  cases.push(detailOnly);
  for (const r of cases) {
    assert.equal(requestJson(r), JSON.stringify(r));
    assert.deepEqual(JSON.parse(requestJson(r)), r);
  }
});
