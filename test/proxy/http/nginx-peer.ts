/**
 * Real nginx (Debian's package) on 127.0.0.1, as a peer the HTTP proxy is
 * compared with: the same server block, the same raw request bytes, the same
 * kind of recording backend. Foreground, single process, a temp prefix; killed
 * and removed by `stop`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { hasCommand } from '../../../src/netns/capability.js';
import { closedPort } from './fixtures.js';

export interface LocalNginx {
  port: number;
  stop(): void;
}

/** True when nginx can run; otherwise the test is skipped (a failure under CI=true). */
export function requireNginx(t: TestContext): boolean {
  if (hasCommand('nginx')) return true;
  const reason = 'nginx is missing: apt-get install nginx (scripts/system-deps.sh)';
  if (process.env.CI === 'true') throw new Error(`CI=true: this test must run, but ${reason}`);
  process.stderr.write(`# skipped ${t.name}: ${reason}\n`);
  t.skip(reason);
  return false;
}

/**
 * An nginx.conf that keeps everything in `dir` (pid, error log, temp paths:
 * nothing under /var), runs in the foreground as one process, and has
 * `httpInside` as the inside of its http block.
 */
export function nginxTestConf(dir: string, httpInside: string, workerConnections: number): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${httpInside}
}
`;
}

/** Starts nginx with `http` as the inside of its http block; `PORT` in it is replaced by the port it listens on. */
export async function startLocalNginx(http: string): Promise<LocalNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-nginx-peer-'));
  const port = await closedPort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxTestConf(dir, http.replaceAll('PORT', String(port)), 256));
  const child: ChildProcess = spawn('nginx', ['-p', dir, '-c', conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await accepts(port)) return { port, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  let log = '';
  try {
    log = readFileSync(join(dir, 'error.log'), 'utf8');
  } catch {}
  stop();
  throw new Error(`nginx did not start: ${stderr.trim() || log.trim() || 'no listener after 10s'}`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
