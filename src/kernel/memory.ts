/**
 * Giving memory back to the system once a burst of work is over: a full V8
 * garbage collection, then glibc's malloc_trim.
 *
 * Why keepwire does this itself (docs/performance.md, idle memory): a burst
 * of new connections grows V8's young generation (to 16 MiB per semi-space) and
 * leaves garbage in its old generation (the sockets of connections parked
 * since), and an idle process allocates almost nothing, so no collection
 * ever runs to give that memory back. V8's own memory reducer, which should,
 * never starts in an idle Node process: it waits for a low allocation rate,
 * and with no collection since the burst its allocation rate is the burst's
 * (Node 20), and Node 26's V8 also wants a low embedder allocation rate,
 * which Node never reports, so it never reads as idle. Measured with 9,000
 * idle connections: 5–6 KiB per connection on both Nodes until something
 * collects; after this, 1–2 KiB on Node 20, and on Node 26 3.6 KiB 15 s
 * after the burst, 0.8 KiB after 40 s (V8's page pool, below).
 *
 * V8's `gc` is had without `--expose-gc` on the command line and without a
 * global: the flag is set, `gc` taken from a new context made for it, and the
 * flag cleared again, so no code in the process's own context can call it.
 * Where that fails, `reclaimMemory` only trims.
 *
 * Not done here: V8 14 (Node 26) keeps the heap pages a collection freed in
 * its page pool, resident, for 15 s and more in an idle process
 * (`--memory-pool-timeout` is 8 s, but set at run time it changes nothing,
 * nor does `--no-memory-pool`; only `--no-memory-pool` on node's command
 * line gives them back at once): docs/performance.md, idle memory.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mallocTrim } from './libc.js';

let gc: (() => void) | null | undefined;

function fullGc(): (() => void) | null {
  if (gc !== undefined) return gc;
  gc = null;
  try {
    const exposed = typeof (globalThis as { gc?: unknown }).gc === 'function';
    setFlagsFromString('--expose-gc');
    const f = runInNewContext('gc') as unknown;
    // A process started with --expose-gc keeps it (e.g. a bench's probe).
    if (!exposed) setFlagsFromString('--no-expose-gc');
    if (typeof f === 'function') gc = f as () => void;
  } catch {
    // this V8 has no gc extension: trim only
  }
  return gc;
}

/** What a reclaim did: whether V8 collected and malloc trimmed, and how long it took (ms). */
export interface Reclaimed {
  gc: boolean;
  trimmed: boolean;
  ms: number;
}

/**
 * One full collection and a malloc trim. It stops the process for the
 * collection (tens of milliseconds with 10,000 idle connections): call it
 * only when idle, and rarely (src/proxy/http/parked.ts).
 */
export function reclaimMemory(): Reclaimed {
  const start = performance.now();
  const collect = fullGc();
  collect?.();
  const trimmed = mallocTrim();
  return { gc: collect !== null, trimmed, ms: performance.now() - start };
}
