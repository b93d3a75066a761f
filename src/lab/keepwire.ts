/**
 * `keepwire serve` inside a lab namespace, with its JSON log lines turned into
 * timeline events: the proxy's own account of what happened (session ends,
 * access lines, stale-connection retries).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LabContext } from './scenario.js';
import type { HostName } from './timeline.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

interface LogLine {
  msg?: string;
  time?: string;
  reason?: string;
  detail?: string;
  status?: number;
  method?: string;
  path?: string;
  upstreamConnect?: string | null;
  retries?: number;
  kind?: string;
}

function describe(entry: LogLine): { kind: string; what: string } | undefined {
  switch (entry.msg) {
    case 'session':
      return {
        kind: 'session-end',
        what: `keepwire logs the session's end: ${entry.reason}${entry.detail ? ` (${entry.detail})` : ''}`,
      };
    case 'request':
      return {
        kind: 'access',
        what: `keepwire logs ${entry.method} ${entry.path} → ${entry.status} (${entry.reason}; upstream connection ${entry.upstreamConnect ?? 'none'}, ${entry.retries ?? 0} retries)`,
      };
    case 'upstream_retry':
      return {
        kind: 'retry',
        what: `keepwire retries: ${entry.kind}${entry.detail ? ` (${entry.detail})` : ''}`,
      };
    default:
      return undefined;
  }
}

/** Starts keepwire with `config` in the given lab host and waits for its `started` line. */
export async function startKeepwire(
  ctx: LabContext,
  where: 'client' | 'backend',
  config: string,
  label: HostName = 'proxy',
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-lab-serve-'));
  ctx.defer(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'keepwire.conf');
  writeFileSync(conf, config);
  const child = ctx.lb[where].spawn(process.execPath, [MAIN, 'serve', '-c', conf]);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`keepwire serve did not start: ${stderr.trim()}`)),
      10_000,
    );
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`keepwire serve exited: ${stderr.trim()}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: LogLine;
      try {
        entry = JSON.parse(line) as LogLine;
      } catch {
        return;
      }
      if (entry.msg === 'started') {
        clearTimeout(timer);
        resolve();
        return;
      }
      const event = describe(entry);
      if (event) ctx.note(label, event.kind, event.what, entry.time ? Date.parse(entry.time) : Date.now());
    });
  });
}
