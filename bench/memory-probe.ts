/**
 * Preloaded into `keepwire serve` (and the bare `net.Server` it measures for
 * scale) by bench/http-idle-memory.ts
 * (`node --expose-gc --import memory-probe.js main.js serve …`): on the
 * message `'memory'` over the IPC channel it runs a full GC and answers with
 * `process.memoryUsage()`. keepwire's own code is not changed or wrapped.
 */
process.on('message', (m) => {
  if (m !== 'memory') return;
  (globalThis as { gc?: () => void }).gc?.();
  process.send?.(process.memoryUsage());
});
// After the listener: adding a 'message' listener refs the channel. Unref'd, it does not keep keepwire alive.
process.channel?.unref();
