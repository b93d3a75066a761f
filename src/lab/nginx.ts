/**
 * Real nginx (Debian's package) inside a lab namespace, so the seed's own fix
 * — `listen … so_keepalive=…;` — is tested literally rather than imitated.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Host, hasCommand } from '../netns/index.js';

export const nginxAvailable = (): boolean => hasCommand('nginx');

export interface RunningNginx {
  dir: string;
  conf: string;
  /** The access log's lines so far (none without `accessLogFormat`). */
  accessLog(): string[];
  stop(): void;
}

export interface NginxOptions {
  port: number;
  /** The inside of the one `server { }` block. */
  server: string;
  /** nginx's `log_format` for an access log in the run's directory; access_log off without it. */
  accessLogFormat?: string;
  /** `events { worker_connections }`, 64 unless given. */
  workerConnections?: number;
  /**
   * Local addresses as `ss -Hltn` prints them (`0.0.0.0:80`, `[::]:80`) that
   * must all be listening before nginx counts as started; without it, any
   * listener on `port`.
   */
  listeners?: string[];
}

/**
 * Starts nginx in `host` with one http server block. It runs in the
 * foreground, single-process (no worker user switch, so its temp paths in a
 * root-owned directory stay writable), and is killed with the topology.
 */
export async function startNginx(host: Host, opts: NginxOptions): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-lab-nginx-'));
  const accessLogFile = join(dir, 'access.log');
  const conf = join(dir, 'nginx.conf');
  const logging =
    opts.accessLogFormat === undefined
      ? 'access_log off;'
      : `log_format keepwire '${opts.accessLogFormat}';\n  access_log ${accessLogFile} keepwire;`;
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections ${opts.workerConnections ?? 64}; }
http {
  ${logging}
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
  const accessLog = () => {
    try {
      return readFileSync(accessLogFile, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  const listening = (ss: string) =>
    opts.listeners
      ? opts.listeners.every((l) => ss.includes(`${l} `))
      : new RegExp(`:${opts.port}\\s`).test(ss);
  // Ready when it listens; nginx has no readiness signal in the foreground.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const { stdout } = await host.exec('ss', ['-Hltn']);
    if (listening(stdout)) return { dir, conf, accessLog, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error(`nginx did not start in ${host.name}: ${stderr.trim() || 'no listener after 10s'}`);
}
