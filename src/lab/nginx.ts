/**
 * Real nginx (Debian's package) inside a lab namespace, so the seed's own fix
 * — `listen … so_keepalive=…;` — is tested literally rather than imitated.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Host, hasCommand } from '../netns/index.js';

export const nginxAvailable = (): boolean => hasCommand('nginx');

export interface RunningNginx {
  dir: string;
  conf: string;
  stop(): void;
}

/**
 * Starts nginx in `host` with one http server block. It runs in the
 * foreground, single-process (no worker user switch, so its temp paths in a
 * root-owned directory stay writable), and is killed with the topology.
 */
export async function startNginx(host: Host, opts: { port: number; server: string }): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-lab-nginx-'));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    ${opts.server}
  }
}
`,
  );
  const child = host.spawn('nginx', ['-p', dir, '-c', conf]);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready when something listens; nginx has no readiness signal in the foreground.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const { stdout } = await host.exec('ss', ['-Hltn']);
    if (new RegExp(`:${opts.port}\\s`).test(stdout)) return { dir, conf, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error(`nginx did not start in ${host.name}: ${stderr.trim() || 'no listener after 10s'}`);
}
