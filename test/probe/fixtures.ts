/**
 * Shared set-up for the probe tests: a namespace topology with a server in the
 * backend, and the probe CLI run inside the client namespace as a user would.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Host } from '../../src/netns/index.js';
import type { ProbeReport } from '../../src/probe/report.js';
import { MAIN } from '../support.js';

export const CLI = MAIN;

const IDLE_SERVER = fileURLToPath(new URL('./idle-server.js', import.meta.url));

export interface IdleServer {
  child: ChildProcess;
  port: number;
  /** Connections the server holds right now, from its last event line. */
  open(): number;
}

/** Starts test/probe/idle-server in `host`; mode `never` never closes idle connections. */
export async function startIdleServer(
  host: Host,
  port: number,
  idleMs: number,
  mode: 'fin' | 'rst' | 'never',
): Promise<IdleServer> {
  const child = host.spawn(process.execPath, [IDLE_SERVER, String(port), String(idleMs), mode]);
  let open = 0;
  const listening = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`idle server exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as { ev: string; open: number; port?: number };
      open = e.open;
      if (e.ev === 'listening') resolve(e.port!);
    });
  });
  return { child, port: await listening, open: () => open };
}

export interface ProbeRun {
  code: number | null;
  stdout: string;
  stderr: string;
  report?: ProbeReport;
  wallMs: number;
}

/** Runs `keepwire probe ARGS` in `host` (its own namespace); parses stdout as JSON when --json is given. */
export function runProbeCli(
  host: Host,
  args: string[],
  opts: { timeoutMs?: number; onSpawn?: (child: ChildProcess) => void } = {},
): Promise<ProbeRun> {
  const started = performance.now();
  const child = host.spawn(process.execPath, [CLI, 'probe', ...args]);
  opts.onSpawn?.(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`probe did not finish within ${opts.timeoutMs ?? 60_000} ms; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const run: ProbeRun = { code, stdout, stderr, wallMs: performance.now() - started };
      if (args.includes('--json') && stdout.trim().startsWith('{')) {
        try {
          run.report = JSON.parse(stdout) as ProbeReport;
        } catch {
          // Left undefined: the test's assertion on report shows stdout.
        }
      }
      resolve(run);
    });
  });
}

/** A one-line summary of a report for assertion messages. */
export function summary(run: ProbeRun): string {
  const r = run.report;
  if (!r) return `exit ${run.code}; stdout: ${run.stdout}; stderr: ${run.stderr}`;
  const { evidence, ...rest } = r;
  const used = evidence
    .filter((e) => e.usedAtMs !== undefined || e.outcome === 'fin' || e.outcome === 'rst-by-server')
    .map((e) => `${e.role}${e.round}:${e.plannedIdleMs ?? '-'}/${e.idleMs}:${e.outcome}`);
  return `${JSON.stringify(rest)}\nevidence: ${used.join(' ')}`;
}
