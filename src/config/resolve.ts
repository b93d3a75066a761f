/**
 * Host names in a configuration must resolve, as in nginx, which resolves
 * every name in `listen`, `server` and `proxy_pass` at start and refuses to
 * start otherwise (`host not found in upstream "app:80" in FILE:LINE`).
 * keepwire still connects by name at run time (the system resolver answers
 * each new connection); this check makes a typo or a missing DNS record an
 * error of `check` and of `serve`'s start and reload instead of 502s later.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Diagnostic } from './diagnostics.js';
import type { Address, Config, SourceRef } from './model.js';

interface Use {
  address: Address;
  /** How nginx names the place: `upstream`, `"listen" directive`, `proxy_pass`. */
  where: 'upstream' | 'listen' | 'proxy_pass';
  source: SourceRef;
}

function uses(config: Config): Use[] {
  const out: Use[] = [];
  for (const block of [config.stream, config.http]) {
    if (block === undefined) continue;
    for (const group of block.upstreams.values())
      for (const s of group.servers) out.push({ address: s.address, where: 'upstream', source: s.source });
    for (const server of block.servers)
      for (const l of server.listens) out.push({ address: l.address, where: 'listen', source: l.source });
  }
  for (const server of config.stream?.servers ?? [])
    if (server.proxyPass.kind === 'address')
      out.push({ address: server.proxyPass.address, where: 'proxy_pass', source: server.source });
  for (const server of config.http?.servers ?? [])
    for (const location of server.locations) {
      const target = location.proxyPass?.target;
      if (target?.kind === 'address')
        out.push({ address: target.address, where: 'proxy_pass', source: location.source });
    }
  return out.filter((u) => isIP(u.address.host) === 0);
}

/** Resolves every host name of `config`; one error per use of a name that does not resolve within `timeoutMs`. */
export async function resolveNames(config: Config, timeoutMs = 10_000): Promise<Diagnostic[]> {
  const all = uses(config);
  const hosts = [...new Set(all.map((u) => u.address.host))];
  const failures = new Map<string, string>();
  await Promise.all(
    hosts.map(async (host) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          lookup(host, { all: true }),
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })),
              timeoutMs,
            );
            timer.unref();
          }),
        ]);
      } catch (error) {
        failures.set(host, (error as NodeJS.ErrnoException).code ?? (error as Error).message);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return all
    .filter((u) => failures.has(u.address.host))
    .map((u): Diagnostic => {
      const code = failures.get(u.address.host)!;
      const place =
        u.where === 'upstream'
          ? `in upstream "${u.address.text}"`
          : u.where === 'listen'
            ? `in "${u.address.text}" of the "listen" directive`
            : `in proxy_pass "${u.address.text}"`;
      return {
        severity: 'error',
        code: 'host-not-found',
        message: `host not found ${place} (${code === 'ETIMEOUT' ? `no answer within ${timeoutMs / 1000}s` : code})`,
        file: u.source.file,
        line: u.source.line,
        col: u.source.col,
        hint: `"${u.address.host}" does not resolve on this host (getent hosts ${u.address.host}); nginx refuses to start on it too: fix the name or its DNS record, or write an IP address`,
      };
    });
}
