/**
 * What the large-upload tests share (upload-timeouts' 256 MiB case and
 * upload-1gib): a slow-reading app of the test's own behind a real
 * `keepwire serve` process whose memory is read from /proc, with no body
 * size limit and the upstream timers bounding any stall.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { type Cleanup, closedPort, serveCli } from '../../support.js';

/** A line of /proc/PID/status, kB: VmRSS now, VmHWM the peak so far. */
export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

export interface UploadServe {
  /** keepwire's listening port. */
  port: number;
  /** keepwire serve's pid, for statusKb. */
  pid: number;
  /** Its RSS once started, kB. */
  baseKb: number;
}

/**
 * Listens `app` on 127.0.0.1 and starts `keepwire serve` passing every
 * request to it under `client_max_body_size 0` and `proxy_read_timeout`/
 * `proxy_send_timeout` of `upstreamTimeout`; both are closed after the test.
 */
export async function serveUploadsTo(t: Cleanup, app: Server, upstreamTimeout: string): Promise<UploadServe> {
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => app.close(() => resolve())));
  const appPort = (app.address() as { port: number }).port;
  const port = await closedPort();
  const serve = serveCli(
    t,
    `http {
    client_max_body_size 0;
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://127.0.0.1:${appPort}; proxy_read_timeout ${upstreamTimeout}; proxy_send_timeout ${upstreamTimeout}; }
    }
}
`,
  );
  await serve.waitFor((l) => l.msg === 'started', 'started', 15_000);
  const pid = serve.child.pid!;
  return { port, pid, baseKb: statusKb(pid) };
}
