/**
 * Preloaded into `keepwire serve` (and the bare `net.Server` it measures for
 * scale) by bench/http-idle-memory.ts
 * (`node --expose-gc --import memory-probe.js main.js serve …`): on the
 * message `'memory'` over the IPC channel it runs a full GC and answers with
 * `process.memoryUsage()` and a breakdown of RSS (below). keepwire's own code
 * is not changed or wrapped.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

/**
 * keepwire's count of parked idle connections and of its memory reclaims
 * (src/proxy/http/parked.ts), read from the module keepwire itself loaded
 * (same URL, same instance); undefined in the bare server and in builds
 * without them.
 */
async function parked(): Promise<{ parked?: number; reclaims?: number; reclaimMs?: number }> {
  if (!process.argv.includes('serve')) return {};
  try {
    const m = (await import(new URL('../proxy/http/parked.js', `file://${process.argv[1]}`).href)) as {
      parkingCounts?: { parked: number };
      reclaimCounts?: { runs: number; last?: { ms: number } };
    };
    return {
      parked: m.parkingCounts?.parked,
      reclaims: m.reclaimCounts?.runs,
      reclaimMs: m.reclaimCounts?.last?.ms,
    };
  } catch {
    return {};
  }
}

type Koffi = {
  load(f: string): { func(sig: string): (...a: unknown[]) => unknown };
  struct(name: string, def: Record<string, string>): unknown;
};
let koffiLib: ReturnType<Koffi['load']> | undefined;
function libc(): ReturnType<Koffi['load']> {
  if (koffiLib) return koffiLib;
  const require = createRequire(process.argv[1]!);
  const koffi = require('koffi') as Koffi;
  koffi.struct('mallinfo2', {
    arena: 'size_t',
    ordblks: 'size_t',
    smblks: 'size_t',
    hblks: 'size_t',
    hblkhd: 'size_t',
    usmblks: 'size_t',
    fsmblks: 'size_t',
    uordblks: 'size_t',
    fordblks: 'size_t',
    keepcost: 'size_t',
  });
  koffiLib = koffi.load('libc.so.6');
  return koffiLib;
}

/**
 * `KEEPWIRE_PROBE_MALLOC_TRIM=1` (an experiment, not the bench's reading):
 * glibc's malloc_trim(0) after the GC returns the free pages inside malloc's
 * arenas, which says how much of RSS is freed native memory glibc kept.
 */
function mallocTrim(): void {
  libc().func('int malloc_trim(size_t)')(0);
}

/** glibc's mallinfo2(): bytes malloc got from the system (sbrk arenas, mmapped chunks), in use, free. */
function mallinfo(): { system: number; mmapped: number; inUse: number; free: number } {
  const m = libc().func('mallinfo2 mallinfo2()')() as Record<string, number | bigint>;
  return {
    system: Number(m.arena),
    mmapped: Number(m.hblkhd),
    inUse: Number(m.uordblks),
    free: Number(m.fordblks),
  };
}

/**
 * Resident bytes by kind of mapping (/proc/self/smaps): file-backed (the node
 * binary, libraries), `[heap]` (glibc's main arena, grown with brk), glibc's
 * other arenas (anonymous 64 MiB-aligned reservations of 64 MiB: rw part plus
 * PROT_NONE rest), thread stacks and other anonymous memory (V8's heap pages,
 * large mallocs, everything else).
 */
function smaps(): Record<string, number> {
  const out: Record<string, number> = {
    file: 0,
    brkHeap: 0,
    mallocArenas: 0,
    otherAnon: 0,
    anonHuge: 0,
    lazyFree: 0,
  };
  const maps: { start: bigint; end: bigint; name: string; rss: number; perms: string }[] = [];
  let cur: (typeof maps)[number] | undefined;
  for (const l of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (m) {
      cur = { start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3]!, name: m[4]!, rss: 0 };
      maps.push(cur);
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(l);
    if (r && cur) cur.rss = Number(r[1]) * 1024;
    const h = /^AnonHugePages:\s+(\d+) kB/.exec(l);
    if (h) out.anonHuge! += Number(h[1]) * 1024;
    // Pages given back with madvise(MADV_FREE): still counted in RSS until the kernel needs them.
    const f = /^LazyFree:\s+(\d+) kB/.exec(l);
    if (f) out.lazyFree! += Number(f[1]) * 1024;
  }
  const ARENA = 64n << 20n;
  for (let i = 0; i < maps.length; i++) {
    const x = maps[i]!;
    if (x.name.startsWith('/')) out.file! += x.rss;
    else if (x.name === '[heap]') out.brkHeap! += x.rss;
    else if (x.name !== '') out[x.name] = (out[x.name] ?? 0) + x.rss;
    else if (x.start % ARENA === 0n && x.perms.startsWith('rw')) {
      // A glibc arena: its rw part, followed by the PROT_NONE rest of the 64 MiB reservation.
      const next = maps[i + 1];
      const whole = next && next.start === x.end && next.perms.startsWith('---') ? next.end : x.end;
      if (whole - x.start === ARENA) out.mallocArenas! += x.rss;
      else out.otherAnon! += x.rss;
    } else out.otherAnon! += x.rss;
  }
  return out;
}

/** Where the resident memory is: V8's heap spaces, malloc, mappings. */
function breakdown(): Record<string, unknown> {
  const h = getHeapStatistics();
  const spaces: Record<string, { committed: number; used: number; physical: number }> = {};
  for (const s of getHeapSpaceStatistics())
    spaces[s.space_name] = {
      committed: s.space_size,
      used: s.space_used_size,
      physical: s.physical_space_size,
    };
  return {
    v8: {
      committed: h.total_heap_size,
      physical: h.total_physical_size,
      used: h.used_heap_size,
      malloced: h.malloced_memory,
      external: h.external_memory,
    },
    spaces,
    malloc: mallinfo(),
    maps: smaps(),
  };
}

process.on('message', (m) => {
  if (m !== 'memory') return;
  void parked().then((n) => {
    const noGc = breakdown();
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const rssAtGc = process.memoryUsage.rss();
    const atGc = breakdown();
    if (process.env.KEEPWIRE_PROBE_MALLOC_TRIM === '1') mallocTrim();
    setTimeout(() => {
      gc?.();
      process.send?.({
        ...process.memoryUsage(),
        ...n,
        rssAtGc,
        breakdown: { noGc, atGc, after: breakdown() },
      });
    }, 2_000);
  });
});
// After the listener: adding a 'message' listener refs the channel. Unref'd, it does not keep keepwire alive.
process.channel?.unref();
