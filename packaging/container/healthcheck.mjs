// The container's HEALTHCHECK: GET $KEEPWIRE_HEALTH_URL (the `health`
// location of keepwire.conf), healthy on 2xx only. keepwire answers 503 there
// during shutdown_delay, so a draining container reports unhealthy before it
// stops accepting. The image has no curl: Node's own http client, 5 s budget (the engine's timeout is 10 s: node's own start is slow on a busy host).
import http from 'node:http';

const url = process.env.KEEPWIRE_HEALTH_URL || 'http://127.0.0.1:8080/healthz';
const req = http.get(url, { timeout: 5000, headers: { 'user-agent': 'keepwire-healthcheck' } }, (res) => {
  res.resume();
  const ok = res.statusCode >= 200 && res.statusCode < 300;
  if (!ok) process.stderr.write(`${url}: HTTP ${res.statusCode}\n`);
  process.exitCode = ok ? 0 : 1;
});
req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
req.on('error', (error) => {
  process.stderr.write(`${url}: ${error.message}\n`);
  process.exitCode = 1;
});
