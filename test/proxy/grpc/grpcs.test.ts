/**
 * grpcs://: TLS to a grpc-js server with ALPN h2 under the grpc_ssl_*
 * settings (the proxy_ssl_* machinery of tls-upstream.ts): verified against
 * grpc_ssl_trusted_certificate and grpc_ssl_name, a call answered; a server
 * whose certificate does not name grpc_ssl_name fails the attempt, and the
 * client gets UNAVAILABLE with the TLS reason.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { closedPort } from '../fixtures.js';
import { startHttp } from '../http/fixtures.js';
import { makePki } from '../tls/pki.js';
import { ECHO, echoClient, type GrpcServer, unaryCall } from './fixtures.js';

describe('grpc_pass grpcs:// with grpc_ssl_verify', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('verifies the server, speaks h2 over TLS, and a wrong name is UNAVAILABLE', async (t) => {
    const pki = makePki(t);
    if (!pki) return;
    const issued = pki.issue('orders.internal');
    const server = new grpc.Server();
    server.addService(ECHO, {
      unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
        cb(null, Buffer.concat([Buffer.from('tls:'), call.request])),
    } as grpc.UntypedServiceImplementation);
    const creds = grpc.ServerCredentials.createSsl(null, [
      { cert_chain: pki.read(issued.cert), private_key: pki.read(issued.key) },
    ]);
    const upPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))),
    );
    const up: GrpcServer = { server, port: upPort, close: async () => server.forceShutdown() };
    cleanup.push(() => up.close());
    const port = await closedPort();
    const lb = await startHttp(
      pki.config(`
        http {
          upstream orders { server 127.0.0.1:${upPort}; }
          server {
            listen 127.0.0.1:${port};
            http2 on;
            grpc_ssl_verify on;
            grpc_ssl_trusted_certificate ca.pem;
            location /keepwire.test.Echo/ { grpc_pass grpcs://orders; grpc_ssl_name orders.internal; grpc_ssl_server_name on; }
            location /wrong/ { grpc_pass grpcs://orders; grpc_ssl_name other.internal; }
          }
        }`),
    );
    cleanup.push(() => lb.close());
    const client = echoClient(port);
    cleanup.push(() => client.close());
    const r = await unaryCall(client, Buffer.from('hi'));
    assert.equal(r.error, null);
    assert.equal(r.reply?.toString(), 'tls:hi');
    const rec = (await lb.waitForRequests(1))[0]!;
    assert.equal(rec.grpcStatus, 0);

    // The same server under a name its certificate does not carry.
    const session = connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const s = session.request({
        ':method': 'POST',
        ':path': '/wrong/keepwire.test.Echo/Unary',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      s.on('error', reject);
      s.on('response', resolve);
      s.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    session.close();
    assert.equal(headers['grpc-status'], '14');
    assert.match(String(headers['grpc-message']), /connect failed: ERR_TLS_CERT_ALTNAME_INVALID/);
  });
});
