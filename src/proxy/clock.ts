/**
 * The proxy's clock, in ms since the epoch: `Date.now()`, read once per I/O
 * callback instead of once per question.
 *
 * One proxied request asked the clock about twelve times (its start, the
 * attempt, the server choice, the read timer and its deadline, the first
 * response byte, the pool's release, the keep-alive checks and timer, the
 * duration), and on this kind of VM a `Date.now()` costs 50–130 ns. nginx
 * reads the time once per event-loop turn (`ngx_time_update` after
 * `epoll_wait`) and every timer and log of that turn uses it; here the read
 * callbacks that carry the request path (client reads in reads.ts, upstream
 * reads in http/transport.ts) `hold` the clock around their work, and every
 * `now()` inside sees the time read at their start. Outside a held callback
 * (timers, connects, drains) `now()` is `Date.now()`: a time is never older
 * than the callback asking for it.
 */

let depth = 0;
let heldMs = 0;

/** ms since the epoch: the time the current I/O callback started, or the time now outside one. */
export function now(): number {
  return depth === 0 ? Date.now() : heldMs;
}

/** An I/O callback starts: `now()` answers this reading until the matching `release`. Nests. */
export function hold(): void {
  if (depth++ === 0) heldMs = Date.now();
}

/** The I/O callback that called `hold` is done. */
export function release(): void {
  depth--;
}
