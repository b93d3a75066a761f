/**
 * The lab's L7 load balancer (`--lb l7`): Debian's nginx in the lb namespace
 * as a reverse proxy on the VIP, standing in for an AWS ALB or an
 * ingress-nginx. It terminates TCP on both legs, so keepalive probes end at
 * its kernel and never reach the other leg; its idle timer
 * (`proxy_read_timeout`/`proxy_send_timeout` = the LB idle, nginx's timers of
 * an upgraded connection, re-armed by data in either direction) counts data
 * only. WebSocket upgrades are passed as nginx's documented snippet does.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LB_ADDRESSES } from '../netns/index.js';
import { startNginx } from './nginx.js';
import type { LabContext } from './scenario.js';

/** Starts the L7 LB on VIP:`port`, proxying to the backend's `port`; stopped with the variant. */
export async function startL7Lb(ctx: LabContext, port: number): Promise<void> {
  const idle = `${ctx.lbIdleS}s`;
  const nginx = await startNginx(ctx.lb.lb, {
    port,
    server: `listen ${LB_ADDRESSES.vip}:${port};
    location / {
      proxy_pass http://${LB_ADDRESSES.backend}:${port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout ${idle};
      proxy_send_timeout ${idle};
    }`,
  });
  ctx.note(
    'lb',
    'config',
    `L7 LB: nginx on the VIP, proxy_read_timeout/proxy_send_timeout ${idle}, WebSocket upgrade on`,
  );
  ctx.defer(() => {
    // nginx's own account of why it closed (info level): the evidence that its idle timer fired.
    try {
      const log = readFileSync(join(nginx.dir, 'error.log'), 'utf8');
      for (const line of log.split('\n')) {
        const m = /^(\d+)\/(\d+)\/(\d+) (\d+):(\d+):(\d+) \[\w+\] \S+ (.*timed out.*?)(, client:|$)/.exec(
          line,
        );
        if (!m) continue;
        // nginx writes local time, to the second.
        const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [
          number,
          number,
          number,
          number,
          number,
          number,
        ];
        ctx.note('lb', 'lb-timeout', `nginx: ${m[7]}`, new Date(y, mo - 1, d, h, mi, sec).getTime());
      }
    } catch {
      // no log: nothing to add
    }
    nginx.stop();
  });
}
