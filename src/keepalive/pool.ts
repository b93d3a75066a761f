/**
 * Keepalive for sockets that connection pools open on their own.
 *
 * Pools set keepalive themselves and would undo ours: Node's http.Agent calls
 * `socket.setKeepAlive(true, keepAliveMsecs)` each time a socket returns to
 * the pool (which on Node 20 also resets the interval to 1 s and the count to
 * 10), and undici's connector sets a 60 s idle on every new socket. So the
 * hooks apply keepwire's settings after the pool's own.
 */
import type { Agent as HttpAgent } from 'node:http';
import type { Socket } from 'node:net';
import { buildConnector } from 'undici';
import { applyPlan, type KeepaliveOptions, type KeepalivePlan, planKeepalive } from './socket.js';

type CreateConnection = (
  options: object,
  callback?: (err: Error | null, socket?: Socket) => void,
) => Socket | undefined;

/**
 * Makes every socket of a Node `http.Agent` (or `https.Agent`) carry the given
 * keepalive settings, from connect and after each return to the pool.
 * Returns the same agent.
 */
export function withKeepalive<A extends HttpAgent>(agent: A, opts: KeepaliveOptions): A {
  // Validate once, here, instead of failing inside the agent later.
  const plan = planKeepalive(opts);
  const target = agent as unknown as {
    createConnection: CreateConnection;
    keepSocketAlive: (socket: Socket) => boolean;
  };
  const create = target.createConnection.bind(agent);
  target.createConnection = (options, callback) => {
    const wrapped =
      callback &&
      ((err: Error | null, socket?: Socket) => {
        if (!err && socket) apply(socket, plan);
        callback(err, socket);
      });
    const socket = create(options, wrapped);
    if (socket) apply(socket, plan);
    return socket;
  };
  const keepSocketAlive = target.keepSocketAlive.bind(agent);
  target.keepSocketAlive = (socket) => {
    const kept = keepSocketAlive(socket);
    if (kept && !socket.destroyed) apply(socket, plan);
    return kept;
  };
  return agent;
}

/**
 * An undici `connect` function that opens sockets like undici's default
 * connector and then applies keepalive. Use as
 * `new Pool(origin, { connect: keepaliveConnector({ idle: 30 }) })`.
 */
export function keepaliveConnector(
  opts: KeepaliveOptions,
  connectOptions: buildConnector.BuildOptions = {},
): buildConnector.connector {
  const plan = planKeepalive(opts);
  const connect = buildConnector(connectOptions);
  return (options, callback) =>
    connect(options, (err, socket) => {
      if (err || !socket) {
        callback(err ?? new Error('undici connector returned no socket'), null);
        return;
      }
      try {
        apply(socket as Socket, plan);
      } catch (error) {
        socket.destroy();
        callback(error as Error, null);
        return;
      }
      callback(null, socket);
    });
}

/**
 * A pool's socket (TLS ones go on the TCP socket under them). The pool set
 * keepalive through Node just before, so Node's cached copy may not match the
 * kernel: the native path verifies.
 */
function apply(socket: Socket, plan: KeepalivePlan): void {
  applyPlan(socket, plan, true, (error) => socket.destroy(error));
}
