/**
 * `keepwire selfcheck`: what this host's kernel gives a socket by default, and
 * whether keepwire can set and read back every keepalive option here.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { detectionTime, recommend } from '../keepalive/recommend.js';
import {
  applyKeepalive,
  type KeepaliveBackend,
  type KeepaliveOptions,
  type KeepaliveState,
  nativeKeepaliveSupported,
  readKeepalive,
} from '../keepalive/socket.js';
import type { KeepaliveSpec } from '../keepalive/spec.js';
import { type SystemKeepaliveDefaults, systemDefaults } from '../keepalive/system.js';
import { type InternalStatus, nodeInternals } from '../kernel/node-internals.js';
import { formatDuration } from '../units/time.js';

export interface SocketCheck {
  socket: 'accepted' | 'connected' | 'before-connect';
  backend: KeepaliveBackend;
  asked: KeepaliveOptions;
  kernel: KeepaliveState;
  ok: boolean;
}

export interface SelfcheckReport {
  node: string;
  nativeKeepalive: boolean;
  system: SystemKeepaliveDefaults;
  systemDetectionSeconds: number;
  lbIdleTimeout: number;
  /** A fresh socket with nothing set: what every application gets by default. */
  untouched: KeepaliveState;
  checks: SocketCheck[];
  /** Every private Node API keepwire uses, checked on this Node (available, or the fallback in use). */
  nodeInternals: InternalStatus[];
  ok: boolean;
}

export async function selfcheck(
  spec: KeepaliveSpec,
  userTimeout: number,
  lbIdleTimeout: number,
): Promise<SelfcheckReport> {
  const system = systemDefaults();
  const asked: KeepaliveOptions = { ...spec, userTimeout };
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const accepted: net.Socket[] = [];
  server.on('connection', (s) => accepted.push(s));
  const sockets: net.Socket[] = [];
  try {
    const plain = net.connect(port, '127.0.0.1');
    sockets.push(plain);
    await once(plain, 'connect');
    const untouched = readKeepalive(plain);
    const internals = nodeInternals({ connected: plain });

    const checks: SocketCheck[] = [];
    const connected = net.connect(port, '127.0.0.1');
    sockets.push(connected);
    await once(connected, 'connect');
    checks.push(check('connected', connected, applyKeepalive(connected, asked), asked));

    const early = net.connect(port, '127.0.0.1');
    sockets.push(early);
    const earlyBackend = applyKeepalive(early, asked);
    await once(early, 'connect');
    checks.push(check('before-connect', early, earlyBackend, asked));

    while (accepted.length < 3) await once(server, 'connection');
    const peer = accepted[1]!;
    checks.push(check('accepted', peer, applyKeepalive(peer, asked), asked));

    return {
      node: process.version,
      nativeKeepalive: nativeKeepaliveSupported,
      system,
      systemDetectionSeconds: detectionTime(system),
      lbIdleTimeout,
      untouched,
      checks,
      nodeInternals: internals,
      ok: checks.every((c) => c.ok),
    };
  } finally {
    for (const s of [...sockets, ...accepted]) s.destroy();
    server.close();
  }
}

function check(
  kind: SocketCheck['socket'],
  socket: net.Socket,
  backend: KeepaliveBackend,
  asked: KeepaliveOptions,
) {
  const kernel = readKeepalive(socket);
  const ok =
    kernel.enabled === (asked.enable ?? true) &&
    (asked.idle === undefined || kernel.idle === asked.idle) &&
    (asked.interval === undefined || kernel.interval === asked.interval) &&
    (asked.count === undefined || kernel.count === asked.count) &&
    (asked.userTimeout === undefined || kernel.userTimeout === asked.userTimeout);
  return { socket: kind, backend, asked, kernel, ok };
}

const secs = (s: number) => formatDuration(s * 1000);

export function renderSelfcheck(r: SelfcheckReport): string {
  const lines: string[] = [];
  const lb = r.lbIdleTimeout;
  lines.push(
    `keepwire selfcheck — Node ${r.node}, keepalive via ${r.nativeKeepalive ? 'Node setKeepAlive options (interval/count native)' : 'libc setsockopt (this Node has no interval/count API)'}`,
  );
  lines.push('');
  lines.push('Kernel defaults in this network namespace:');
  lines.push(
    `  net.ipv4.tcp_keepalive_time   = ${r.system.idle}  (first probe after ${secs(r.system.idle)} idle)`,
  );
  lines.push(`  net.ipv4.tcp_keepalive_intvl  = ${r.system.interval}`);
  lines.push(`  net.ipv4.tcp_keepalive_probes = ${r.system.count}`);
  lines.push(
    `  A socket that enables SO_KEEPALIVE without its own values notices a dead peer after ${secs(r.systemDetectionSeconds)}.`,
  );
  lines.push(
    `  A socket that sets nothing (${r.untouched.enabled ? 'SO_KEEPALIVE on' : 'SO_KEEPALIVE off'}, what most applications get) sends no probe at all.`,
  );
  if (r.system.idle >= lb) {
    lines.push(
      `  Behind a load balancer that forgets idle sessions after ${secs(lb)}, the default ${secs(r.system.idle)} comes too late: long requests and idle pooled connections die.`,
    );
  }
  lines.push('');
  lines.push('Per-socket keepalive set by keepwire and read back from the kernel:');
  lines.push('  socket           backend  SO_KEEPALIVE  KEEPIDLE  KEEPINTVL  KEEPCNT  USER_TIMEOUT  ok');
  for (const c of r.checks) {
    const k = c.kernel;
    lines.push(
      `  ${c.socket.padEnd(16)} ${c.backend.padEnd(8)} ${String(k.enabled ? 1 : 0).padEnd(13)} ${`${k.idle}s`.padEnd(9)} ${`${k.interval}s`.padEnd(10)} ${String(k.count).padEnd(8)} ${`${k.userTimeout}ms`.padEnd(13)} ${c.ok ? 'yes' : 'NO'}`,
    );
  }
  lines.push('');
  lines.push(`Node internals keepwire relies on (Node ${r.node}):`);
  for (const i of r.nodeInternals) {
    lines.push(
      `  ${i.available ? 'available   ' : 'FALLBACK    '} ${i.name} — ${i.usedBy}${i.available ? '' : `; in use: ${i.fallback} (${i.detail})`}`,
    );
  }
  lines.push('');
  const rec = recommend(lb);
  lines.push(
    `For an LB idle timeout of ${secs(lb)}: nginx \`listen 80 so_keepalive=${rec.soKeepalive};\`, keepwire \`applyKeepalive(socket, ${JSON.stringify(rec.keepalive)})\`.`,
  );
  for (const why of rec.reasoning) lines.push(`  - ${why}`);
  lines.push('');
  lines.push(
    r.ok
      ? 'selfcheck: ok — every setting took effect in the kernel.'
      : 'selfcheck: FAILED — the kernel holds different values than asked.',
  );
  return lines.join('\n');
}
