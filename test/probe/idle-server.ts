/**
 * A TCP server that closes idle connections itself, as HTTP servers, database
 * proxies and brokers do: `node idle-server.js PORT IDLE_MS fin|rst|never [LISTEN]`
 * (LISTEN defaults to 0.0.0.0; `::` takes IPv6 and IPv4).
 * Data resets a connection's timer. Prints one JSON line per event on stdout
 * (listening, accepted, closed with the reason) so a test can count what is
 * still open.
 */
import net from 'node:net';

// `node --test dist/test/` also runs this file (it lives under test/); without arguments it has no job.
if (process.argv.length < 5) process.exit(0);
const [portText = '0', idleText = '0', mode = 'fin', listen = '0.0.0.0'] = process.argv.slice(2);
const idleMs = Number(idleText);
let open = 0;
const say = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ...event, open })}\n`);

const server = net.createServer((socket) => {
  open++;
  say({ ev: 'accepted' });
  socket.on('data', () => undefined);
  if (mode !== 'never') {
    socket.setTimeout(idleMs, () => {
      if (mode === 'rst') socket.resetAndDestroy();
      else socket.end();
    });
  }
  socket.on('error', () => undefined);
  socket.on('close', () => {
    open--;
    say({ ev: 'closed' });
  });
});
server.listen(Number(portText), listen, () =>
  say({ ev: 'listening', port: (server.address() as net.AddressInfo).port }),
);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
