/**
 * Parking: an idle keep-alive client connection held as its TCP handle only.
 *
 * A keep-alive connection spends most of its life idle between requests,
 * and idle it needs only to notice the next request's first bytes, the
 * client's close, or its keepalive_timeout. Node's `net.Socket` and its
 * stream state are most of what an idle connection costs (memory per idle
 * connection, docs/performance.md), so a connection idle for `afterMs`
 * releases its socket: the libuv handle keeps reading (its `onread` is
 * keepwire's), and the ClientConnection keeps what must outlive the socket
 * (request count for keepalive_requests, age for keepalive_time, the client
 * address, the routed settings, its keepalive_timeout deadline in its timer
 * list). The next bytes make a net.Socket again over the same handle and are
 * read first; a FIN or error closes the handle, as keepalive_timeout and
 * stop do. nginx likewise frees an idle keep-alive connection's buffers
 * (ngx_http_set_keepalive) and keeps only the connection and its event.
 *
 * Why a sweep and not "park as soon as idle": under keep-alive load the next
 * request comes right after each response, and making a socket again per
 * request would cost far more CPU than it saves. A sweep every `sweepMs`
 * parks connections idle for at least `afterMs`: nothing is done per
 * request, and a busy connection is never parked.
 *
 * The private Node APIs are in src/kernel/node-internals.ts; where this Node
 * lacks them, or for tests (`forceNoParking`), idle connections stay
 * net.Sockets: the same behaviour, more memory.
 */
import { bareHandlesAvailable } from '../../kernel/node-internals.js';
import type { ClientConnection } from './connection.js';

/** Park connections idle for this long, checked every `sweepMs` (tests shorten both). */
export const parking = { afterMs: 1_000, sweepMs: 1_000 };

let forcedOff = false;

/** For tests: idle connections stay net.Sockets (true), or park as this Node allows (false). */
export function forceNoParking(on: boolean): void {
  forcedOff = on;
}

/** Whether idle connections may be parked now (also false until a live handle showed net's owner symbol missing). */
export function parkingAllowed(): boolean {
  return !forcedOff && bareHandlesAvailable();
}

/** Process-wide counts (tests, the bench): parked now, and parks/unparks so far. */
export const parkingCounts = { parked: 0, parks: 0, unparks: 0 };

/** Parks the connections of `set` idle for `afterMs` (each checks what it must: ClientConnection.park). */
export function sweep(set: Iterable<ClientConnection>, now: number): void {
  if (!parkingAllowed()) return;
  const after = parking.afterMs;
  for (const c of set) if (!c.isParked && now - c.idleSince >= after) c.park();
}

/** A frontend's sweep timer (does not keep the process alive). */
export function startSweep(set: Iterable<ClientConnection>, clock: () => number): NodeJS.Timeout {
  const t = setInterval(() => sweep(set, clock()), parking.sweepMs);
  t.unref();
  return t;
}
