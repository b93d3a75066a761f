/**
 * Preloaded into `keepwire serve` (and the bare `net.Server` it measures for
 * scale) by bench/http-idle-memory.ts
 * (`node --expose-gc --import memory-probe.js main.js serve …`): on the
 * message `'memory'` over the IPC channel it runs a full GC and answers with
 * `process.memoryUsage()`. keepwire's own code is not changed or wrapped.
 */
import { createRequire } from 'node:module';

/**
 * keepwire's count of parked idle connections (src/proxy/http/parked.ts), read
 * from the module keepwire itself loaded (same URL, same instance); undefined
 * in the bare server and in builds without parking.
 */
async function parked(): Promise<number | undefined> {
  if (!process.argv.includes('serve')) return undefined;
  try {
    const m = (await import(new URL('../proxy/http/parked.js', `file://${process.argv[1]}`).href)) as {
      parkingCounts?: { parked: number };
    };
    return m.parkingCounts?.parked;
  } catch {
    return undefined;
  }
}

/**
 * The reading is taken 2 s after a full GC (and a second one): V8 returns the
 * pages a GC freed to the system from a background thread, so RSS read right
 * after the GC still counts garbage just collected (objects an idle process
 * released but never collected, such as the sockets of parked connections).
 * `rssAtGc` is the RSS right after the first GC (the bench's reading before
 * 2026-11-30 05:00).
 */
/**
 * `KEEPWIRE_PROBE_MALLOC_TRIM=1` (an experiment, not the bench's reading):
 * glibc's malloc_trim(0) after the GC returns the free pages inside malloc's
 * arenas, which says how much of RSS is freed native memory glibc kept.
 */
function mallocTrim(): void {
  const require = createRequire(process.argv[1]!);
  const koffi = require('koffi') as { load(f: string): { func(sig: string): (n: number) => number } };
  koffi.load('libc.so.6').func('int malloc_trim(size_t)')(0);
}

process.on('message', (m) => {
  if (m !== 'memory') return;
  void parked().then((n) => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const rssAtGc = process.memoryUsage.rss();
    if (process.env.KEEPWIRE_PROBE_MALLOC_TRIM === '1') mallocTrim();
    setTimeout(() => {
      gc?.();
      process.send?.({ ...process.memoryUsage(), parked: n, rssAtGc });
    }, 2_000);
  });
});
// After the listener: adding a 'message' listener refs the channel. Unref'd, it does not keep keepwire alive.
process.channel?.unref();
