import type { Balancing, UpstreamGroup, UpstreamServer } from '../../src/config/model.js';
import { Upstream } from '../../src/upstream/index.js';
import { upstreamServerSettings } from '../model-text.js';

const SRC = { file: 'test.conf', line: 1, col: 1 };

export function srv(n: number, opts: Partial<UpstreamServer> = {}): UpstreamServer {
  const port = 10_000 + n;
  return {
    address: { host: '10.0.0.1', port, text: `10.0.0.1:${port}` },
    ...upstreamServerSettings(),
    source: SRC,
    ...opts,
  };
}

export function upstream(
  servers: UpstreamServer[],
  balancing: Balancing = { kind: 'round_robin' },
): Upstream {
  const group: UpstreamGroup = { name: 'g', servers, balancing, source: SRC };
  return new Upstream(group);
}

/** Counts picks per server port over `n` picks. */
export function tally(
  u: Upstream,
  n: number,
  vars: (i: number) => Record<string, string> = () => ({}),
): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const h = u.pick(vars(i));
    const port = h?.address.port ?? -1;
    counts.set(port, (counts.get(port) ?? 0) + 1);
  }
  return counts;
}
