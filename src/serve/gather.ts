/**
 * Whole-server answers for the pages that report on the server (`metrics`,
 * `status`, `stub_status`): each serving process registers one collector per
 * topic, and a page asks `gather(topic)` for one answer per serving process.
 *
 * In a single-process server that is this process's own collector. Under a
 * master with workers, the worker side installs a transport
 * (`setGatherTransport`) that asks the master, which asks every live worker
 * for `collectLocal(topic)` and returns their answers; the page merges them
 * (sums counters, concatenates connection tables), as nginx's shared-memory
 * zones make its numbers whole-server.
 */
export type GatherTopic = 'metrics' | 'status';

type Collector = () => unknown | Promise<unknown>;

const collectors = new Map<GatherTopic, Collector>();
let transport: ((topic: GatherTopic) => Promise<unknown[]>) | undefined;

/** Registers this process's collector for a topic; returns the unregister function. */
export function registerCollector(topic: GatherTopic, collect: Collector): () => void {
  collectors.set(topic, collect);
  return () => {
    if (collectors.get(topic) === collect) collectors.delete(topic);
  };
}

/** This process's own answer, or undefined when nothing is registered for the topic. */
export async function collectLocal(topic: GatherTopic): Promise<unknown> {
  const collect = collectors.get(topic);
  return collect ? await collect() : undefined;
}

/** Installs (or with undefined removes) the cross-process transport of a worker. */
export function setGatherTransport(next: ((topic: GatherTopic) => Promise<unknown[]>) | undefined): void {
  transport = next;
}

/** One answer per serving process: every worker's under a master, this process's own otherwise. */
export async function gather(topic: GatherTopic): Promise<unknown[]> {
  if (transport) return transport(topic);
  const own = await collectLocal(topic);
  return own === undefined ? [] : [own];
}
