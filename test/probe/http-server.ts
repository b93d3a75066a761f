/**
 * Node's own HTTP server as a probe target: `node http-server.js PORT HOST
 * [TIMEOUT_MS] [keep-alive|close] [KEEPALIVE_MS]`. Prints one JSON line per event on stdout: listening (with
 * the port), and per request what arrived (method, url, version, Host) and
 * whether Node kept the connection open after answering, so a test can check
 * that the probe's HEAD is a request a real server answers with keep-alive.
 * TIMEOUT_MS > 0 closes connections idle that long (`server.timeout`, which
 * also covers connections that never sent a request), as a server-side idle
 * timeout. `close` answers every request with `Connection: close`.
 * KEEPALIVE_MS is `server.keepAliveTimeout`, the idle time allowed after a
 * response (Node's default 5000).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

// `node --test dist/test/` also runs this file (it lives under test/); without arguments it has no job.
if (process.argv.length < 4) process.exit(0);
const [portText = '0', host = '::', timeoutText = '0', mode = 'keep-alive', keepAliveText = '5000'] =
  process.argv.slice(2);
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

const server = http.createServer((req, res) => {
  res.on('finish', () =>
    say({
      ev: 'request',
      method: req.method,
      url: req.url,
      httpVersion: req.httpVersion,
      host: req.headers.host ?? null,
      status: res.statusCode,
      // A Connection: close set by the handler ends the connection without clearing shouldKeepAlive.
      keepAlive: res.shouldKeepAlive && res.getHeader('connection') !== 'close',
    }),
  );
  res.setHeader('content-type', 'text/plain');
  if (mode === 'close') res.setHeader('connection', 'close');
  res.end('keepwire probe target\n');
});
server.timeout = Number(timeoutText);
server.keepAliveTimeout = Number(keepAliveText);
server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
  say({ ev: 'client-error', code: error.code ?? error.message });
  socket.destroy();
});
server.listen(Number(portText), host, () =>
  say({ ev: 'listening', port: (server.address() as AddressInfo).port }),
);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
