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
import { type Reclaimed, reclaimMemory } from '../../kernel/memory.js';
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
  // Busy: a connection in a request, or idle for less than `after` (keep-alive load).
  let busy = false;
  for (const c of set) {
    if (c.isParked) continue;
    if (now - c.idleSince < after || c.state !== 'waiting') busy = true;
    else c.park();
  }
  maybeReclaim(now, busy);
}

/**
 * Memory back to the system after a burst of connections went idle
 * (src/kernel/memory.ts: a full V8 collection and malloc_trim). The memory a
 * burst committed stays with an idle process otherwise: nothing collects in
 * a process that allocates nothing (docs/performance.md, idle memory). Run
 * from the sweep, never per request, and only when
 * - at least `minParks` connections were parked since the last run (a burst
 *   went idle: their sockets are garbage now),
 * - for `quietMs` no connection was parked or woken and none was busy (in a
 *   request, or idle for less than `afterMs`): the burst is over and no load
 *   would feel the collection's pause; a server whose connections come and
 *   go keeps the memory it reuses,
 * - the last run is at least `minIntervalMs` ago.
 * and again `secondPassMs` later if still quiet: V8 shrinks its young
 * generation at a collection only when its recent allocation rate is low,
 * which it is not yet right after the burst (measured on Node 26: the first
 * collection keeps the 16 MiB young generation, the second gives it back).
 * Each collection stops the process for tens of milliseconds (50 ms with
 * 9,000 idle connections): once per burst at most, never more than once a
 * minute.
 */
export const reclaiming = { minParks: 512, quietMs: 3_000, secondPassMs: 5_000, minIntervalMs: 60_000 };

/** Process-wide (tests, the bench): runs (first passes) and second passes so far, and the last pass's result. */
export const reclaimCounts: { runs: number; secondPasses: number; last: Reclaimed | undefined } = {
  runs: 0,
  secondPasses: 0,
  last: undefined,
};

const burst = {
  parksAtRun: 0,
  activity: -1,
  quietSince: 0,
  ranAt: Number.NEGATIVE_INFINITY,
  secondPassDue: false,
};

function maybeReclaim(now: number, busy: boolean): void {
  const activity = parkingCounts.parks + parkingCounts.unparks;
  if (busy || activity !== burst.activity) {
    burst.activity = activity;
    burst.quietSince = now;
    // Busy again: no second pause for this burst.
    burst.secondPassDue = false;
    return;
  }
  if (burst.secondPassDue && now - burst.ranAt >= reclaiming.secondPassMs) {
    burst.secondPassDue = false;
    reclaimCounts.secondPasses++;
    reclaimCounts.last = reclaimMemory();
    return;
  }
  if (
    parkingCounts.parks - burst.parksAtRun < reclaiming.minParks ||
    now - burst.quietSince < reclaiming.quietMs ||
    now - burst.ranAt < reclaiming.minIntervalMs
  )
    return;
  burst.parksAtRun = parkingCounts.parks;
  burst.ranAt = now;
  burst.secondPassDue = true;
  reclaimCounts.runs++;
  reclaimCounts.last = reclaimMemory();
}

/** A frontend's sweep timer (does not keep the process alive). */
export function startSweep(set: Iterable<ClientConnection>, clock: () => number): NodeJS.Timeout {
  const t = setInterval(() => sweep(set, clock()), parking.sweepMs);
  t.unref();
  return t;
}
