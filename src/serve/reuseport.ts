/**
 * What `listen ... reuseport` does on the running platform and Node, for
 * `keepwire check` to say (issue #14: a setting that does nothing must not
 * pass in silence).
 */
import type { Config } from '../config/model.js';

export interface ReuseportEffect {
  /** `warning`: it has no effect here. */
  severity: 'note' | 'warning';
  text: string;
}

/** Undefined when no listen has `reuseport`. */
export function reuseportEffect(config: Config, platform = process.platform): ReuseportEffect | undefined {
  const uses = [...(config.stream?.servers ?? []), ...(config.http?.servers ?? [])].some((s) =>
    s.listens.some((l) => l.reuseport),
  );
  if (!uses) return undefined;
  if (platform !== 'linux')
    return {
      severity: 'warning',
      text: `reuseport: on ${platform} keepwire passes it to Node's listen (reusePort), which Node before 22.12 ignores; with worker_processes above 1 serve needs Linux`,
    };
  const workers =
    config.workerProcesses === 1
      ? 'worker_processes 1: one socket, which other processes with SO_REUSEPORT may share'
      : 'one socket per worker in one SO_REUSEPORT group (the kernel spreads connections over them by hash)';
  return {
    severity: 'note',
    text: `reuseport: SO_REUSEPORT is set through libc before bind on every Node (Node ${process.versions.node.split('.')[0]}'s own reusePort is not relied on); ${workers}`,
  };
}
