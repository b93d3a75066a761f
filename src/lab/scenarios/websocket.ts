/**
 * A WebSocket idle behind a load balancer: ws client → LB (VIP) → keepwire →
 * ws backend, quiet for 2× the LB idle timeout, then a message each way
 * (`up`, answered `down`). Which keepalive keeps it depends on the LB kind:
 * an L4 LB (the kernel's NAT, `--lb l4`) forwards every segment, so TCP
 * keepalive probes refresh its timer; an L7 LB (nginx, `--lb l7`) terminates
 * TCP, probes end at its kernel, and only data re-arms its idle timer: TCP
 * keepalive cannot hold the connection there, keepwire's
 * `websocket_heartbeat` (unsolicited Pongs, data to the LB) and the
 * application's own pings can.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LB_ADDRESSES } from '../../netns/index.js';
import { startKeepwire } from '../keepwire.js';
import { startL7Lb } from '../l7-lb.js';
import type { LabContext, Observation, Outcome, Variant } from '../scenario.js';
import type { HostName } from '../timeline.js';

const PEER = fileURLToPath(new URL('../ws-peer-main.js', import.meta.url));
const PROXY_PORT = 8080;
const BACKEND_PORT = 8081;

interface PeerEvent {
  ev: string;
  at: number;
  data?: string;
  code?: number | string;
}

interface Setup {
  /** TCP keepalive on the client's socket, keepwire's listener and upstream socket, and the backend's socket. */
  tcpKeepalive?: boolean;
  /** keepwire's websocket_heartbeat. */
  heartbeat?: boolean;
  /** The client pings (the application's own heartbeat). */
  appPing?: boolean;
}

/** A ws peer process in a namespace; its events go to `onEvent` and the timeline. */
function spawnPeer(
  ctx: LabContext,
  host: 'client' | 'backend',
  label: HostName,
  args: string[],
  onEvent: (e: PeerEvent) => void,
): ChildProcess {
  const child = ctx.lb[host].spawn(process.execPath, [PEER, ...args]);
  ctx.defer(() => {
    child.kill('SIGKILL');
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let e: PeerEvent;
    try {
      e = JSON.parse(line) as PeerEvent;
    } catch {
      return;
    }
    onEvent(e);
    const what: Record<string, string> = {
      listening: 'ws server listening',
      connection: 'ws server accepts the WebSocket',
      open: 'ws client: WebSocket open',
      send: `${label} sends ${JSON.stringify(e.data)}`,
      message: `${label} receives ${JSON.stringify(e.data)}`,
      pong: `${label} receives a Pong`,
      ping: `${label} receives a Ping`,
      close: `${label}: WebSocket closed (code ${e.code})`,
      error: `${label}: error ${e.code}`,
    };
    // Pongs are many; the first few show the rhythm.
    if (e.ev === 'pong' || e.ev === 'ping') return;
    ctx.note(label, `ws-${e.ev}`, what[e.ev] ?? e.ev, e.at);
  });
  return child;
}

async function idleWebSocket(ctx: LabContext, setup: Setup): Promise<Observation> {
  const idleS = ctx.lbIdleS;
  const keepaliveMs = 1000;
  const ka = setup.tcpKeepalive ? ['--keepalive-ms', String(keepaliveMs)] : [];
  // The backend: a ws server behind keepwire, both in the backend namespace.
  const backendReady = new Promise<void>((resolve) =>
    spawnPeer(ctx, 'backend', 'backend', ['server', String(BACKEND_PORT), ...ka], (e) => {
      if (e.ev === 'listening') resolve();
    }),
  );
  await backendReady;
  const directives = [
    setup.tcpKeepalive ? 'proxy_socket_keepalive 1s:1s:3;' : '',
    setup.heartbeat ? `websocket_heartbeat ${idleS * 500}ms;` : '',
  ].filter(Boolean);
  const listen = `listen ${LB_ADDRESSES.backend}:${PROXY_PORT}${setup.tcpKeepalive ? ' so_keepalive=1s:1s:3' : ''};`;
  ctx.note('proxy', 'config', `keepwire serve: ${[listen, ...directives].join(' ') || 'defaults'}`);
  await startKeepwire(
    ctx,
    'backend',
    `http {
    server {
        ${listen}
        location / {
            proxy_pass http://127.0.0.1:${BACKEND_PORT};
            proxy_http_version 1.1;
            proxy_read_timeout ${idleS * 10}s;
            ${directives.join('\n            ')}
        }
    }
}
`,
  );
  if (ctx.lbKind === 'l7') await startL7Lb(ctx, PROXY_PORT);
  const pongs = { client: 0 };
  let resolveEnd: (o: Observation) => void = () => {};
  const ended = new Promise<Observation>((resolve) => {
    resolveEnd = resolve;
  });
  let error: string | undefined;
  const idleMs = idleS * 2000;
  const args = [
    'client',
    `ws://${LB_ADDRESSES.vip}:${PROXY_PORT}/`,
    '--idle-ms',
    String(idleMs),
    ...ka,
    ...(setup.appPing ? ['--ping-ms', String(idleS * 500)] : []),
  ];
  ctx.note(
    'client',
    'request',
    `ws client opens a WebSocket through the ${ctx.lbKind === 'l7' ? 'L7 LB (nginx)' : 'L4 LB (NAT)'}, stays quiet ${idleMs / 1000}s${setup.appPing ? ` (pinging every ${idleS / 2}s)` : ''}, then sends "up"`,
  );
  let openAt: number | undefined;
  spawnPeer(ctx, 'client', 'client', args, (e) => {
    const afterS = (e.at - ctx.start) / 1000;
    if (e.ev === 'open') openAt = e.at;
    const sinceOpen = openAt === undefined ? '' : ` ${((e.at - openAt) / 1000).toFixed(1)}s after it opened`;
    if (e.ev === 'pong') pongs.client++;
    if (e.ev === 'error') error = String(e.code);
    if (e.ev === 'message' && e.data === 'down')
      resolveEnd({
        outcome: 'response',
        detail: `"up" and "down" both arrived after ${idleMs / 1000}s quiet (${pongs.client} Pongs at the client)`,
        afterS,
      });
    if (e.ev === 'close') {
      const outcome: Outcome = error === 'ECONNRESET' || error === 'EPIPE' ? 'reset' : 'closed';
      resolveEnd({
        outcome,
        detail: `WebSocket closed (code ${e.code}${error ? `, ${error}` : ''})${sinceOpen}`,
        afterS,
      });
    }
  });
  const limitMs = idleMs + idleS * 3000 + 5000;
  const timer = ctx.sleep(limitMs).then(
    (): Observation => ({
      outcome: 'timeout',
      detail: `no answer and no close within ${limitMs / 1000}s (the LB drops the session's packets silently)`,
    }),
  );
  const result = await Promise.race([ended, timer]);
  if (result.outcome === 'timeout') ctx.note('client', 'timeout', 'ws client gives up waiting');
  return result;
}

/** Without keepalive the LB forgets the session: an L4 one resets or drops the late message, an L7 one closes. */
const lost = (expiry: string, lbKind: string): Outcome =>
  lbKind === 'l7' ? 'closed' : expiry === 'rst' ? 'reset' : 'timeout';

export const websocket: Variant[] = [
  {
    scenario: 'websocket',
    name: 'no-keepalive',
    summary: 'nothing crosses the LB while the WebSocket is quiet: the LB forgets it (L4) or closes it (L7)',
    expected: lost,
    lbKinds: ['l4', 'l7'],
    needs: ['nginx'],
    run: (ctx) => idleWebSocket(ctx, {}),
  },
  {
    scenario: 'websocket',
    name: 'tcp-keepalive',
    summary:
      "TCP keepalive 1s on every socket: probes refresh an L4 LB, but end at an L7 LB's kernel (captured), which closes",
    expected: (_expiry, lbKind) => (lbKind === 'l7' ? 'closed' : 'response'),
    lbKinds: ['l4', 'l7'],
    needs: ['nginx'],
    run: (ctx) => idleWebSocket(ctx, { tcpKeepalive: true }),
  },
  {
    scenario: 'websocket',
    name: 'websocket_heartbeat',
    summary: "keepwire's websocket_heartbeat (LB idle / 2): unsolicited Pongs are data to any LB",
    expected: () => 'response',
    lbKinds: ['l4', 'l7'],
    needs: ['nginx'],
    run: (ctx) => idleWebSocket(ctx, { heartbeat: true }),
  },
  {
    scenario: 'websocket',
    name: 'app-ping',
    summary: "the application's own Ping every LB idle / 2 (the reference)",
    expected: () => 'response',
    lbKinds: ['l4', 'l7'],
    needs: ['nginx'],
    run: (ctx) => idleWebSocket(ctx, { appPing: true }),
  },
];
