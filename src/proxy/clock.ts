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
 * `now()` inside sees one reading per turn of the event loop: the first held
 * callback of a turn reads it, the others of that turn (under load, dozens:
 * one epoll_wait hands libuv every ready socket) reuse it, and an immediate
 * (which runs after the turn's I/O callbacks) lets the next turn read anew.
 * A pending immediate also keeps libuv's next poll from blocking, so a held
 * reading is never older than the work done since it was read, never an idle
 * wait: under load that is 1/50 of the readings, for one immediate a turn.
 * Outside a held callback (timers, connects, drains) `now()` is
 * `Date.now()`.
 */

let depth = 0;
let heldMs = 0;
/** True from a turn's first held reading until the immediate after that turn's I/O callbacks. */
let read = false;

function turnEnded(): void {
  read = false;
}

/** ms since the epoch: this turn's reading inside a held I/O callback, the time now outside one. */
export function now(): number {
  return depth === 0 ? Date.now() : heldMs;
}

/** An I/O callback starts: `now()` answers this turn's reading until the matching `release`. Nests. */
export function hold(): void {
  if (depth++ === 0 && !read) {
    heldMs = Date.now();
    read = true;
    setImmediate(turnEnded);
  }
}

/** The I/O callback that called `hold` is done. */
export function release(): void {
  depth--;
}
