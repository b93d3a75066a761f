/**
 * `keepwire serve` inside a lab namespace, with its JSON log lines turned into
 * timeline events: the proxy's own account of what happened (session ends,
 * access lines, stale-connection retries).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Host } from '../netns/index.js';
import type { LabContext } from './scenario.js';
import type { HostName } from './timeline.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface LogLine {
  [field: string]: unknown;
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
        what: `keepwire logs ${entry.method} ${entry.path} → ${entry.status}${entry.grpcStatus === undefined ? '' : ` grpc-status ${entry.grpcStatus}`} (${entry.reason}${entry.reason !== 'ok' && entry.detail ? `: ${entry.detail}` : ''}; upstream connection ${entry.upstreamConnect ?? 'none'}, ${entry.retries ?? 0} retries${entry.websocketHeartbeats === undefined ? '' : `, ${entry.websocketHeartbeats} WebSocket heartbeats sent`})`,
      };
    case 'websocket_relay':
      return { kind: 'websocket-relay', what: `keepwire relays plain bytes: ${entry.detail}` };
    case 'grpc_ping_timeout':
    case 'grpc_too_many_pings':
      return { kind: entry.msg, what: `keepwire: ${entry.detail} (${entry.upstream})` };
    case 'upstream_retry':
      return {
        kind: 'retry',
        what: `keepwire retries: ${entry.kind}${entry.detail ? ` (${entry.detail})` : ''}`,
      };
    default:
      return undefined;
  }
}

/** A `keepwire serve` child process in a namespace, with its JSON log lines. */
export interface ServeProcess {
  child: ChildProcess;
  /** Every JSON line keepwire has written so far. */
  lines: LogLine[];
  /** Kills keepwire and removes its configuration directory. */
  stop(): void;
}

/**
 * Writes `config` to a temporary file and starts `keepwire serve` with it in
 * `host`; resolves once keepwire logs `started`. `onLine` sees every later
 * log line as it arrives.
 */
export async function spawnServe(
  host: Host,
  config: string,
  onLine?: (entry: LogLine) => void,
): Promise<ServeProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-serve-'));
  const conf = join(dir, 'keepwire.conf');
  writeFileSync(conf, config);
  const child = host.spawn(process.execPath, [MAIN, 'serve', '-c', conf]);
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const lines: LogLine[] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      // Generous: a lab run starts a keepwire per variant at once, and on a loaded 2-core machine
      // loading its modules alone has taken over 10 s.
      const timer = setTimeout(
        () => reject(new Error(`keepwire serve did not start within 30s: ${stderr.trim()}`)),
        30_000,
      );
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`keepwire serve exited (${code}): ${stderr.trim()}`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let entry: LogLine;
        try {
          entry = JSON.parse(line) as LogLine;
        } catch {
          return;
        }
        lines.push(entry);
        if (entry.msg === 'started') {
          clearTimeout(timer);
          resolve();
        } else onLine?.(entry);
      });
    });
  } catch (error) {
    stop();
    throw error;
  }
  return { child, lines, stop };
}

/** Starts keepwire with `config` in the given lab host and waits for its `started` line. */
export async function startKeepwire(
  ctx: LabContext,
  where: 'client' | 'backend',
  config: string,
  label: HostName = 'proxy',
): Promise<void> {
  const serve = await spawnServe(ctx.lb[where], config, (entry) => {
    const event = describe(entry);
    if (event) ctx.note(label, event.kind, event.what, entry.time ? Date.parse(entry.time) : Date.now());
  });
  ctx.defer(() => serve.stop());
}
