/**
 * gRPC behind a load balancer's idle timeout: a `@grpc/grpc-js` client →
 * keepwire (`http2 on`, h2c on loopback, `grpc_pass`) → L4 LB (VIP) →
 * grpc-js server. Only keepwire's upstream leg crosses the LB, so only
 * keepwire's settings decide whether it lives.
 *
 * - A server-streaming call: the server sends one message, stays quiet for
 *   2× the LB idle, then sends the rest. Nothing crosses the LB meanwhile,
 *   so without keepalive the LB forgets the session and the late messages
 *   never arrive: the call hangs until the client's deadline (the late
 *   packets are refused untranslated under rst expiry, dropped under drop;
 *   either way nothing reaches keepwire). `grpc_socket_keepalive` (TCP
 *   probes, which an L4 LB forwards) and `grpc_ping_interval` (HTTP/2
 *   PINGs, data to any LB) keep the session.
 * - An idle channel: one unary call, the channel idle for 2× the LB idle,
 *   then a second call. keepwire's pooled upstream connection is stale by
 *   then: the second call fails (what keepwire and grpc-js then do is the
 *   variant's story), unless `grpc_ping_interval` with
 *   `grpc_ping_without_calls on` (gRPC's keepalive_permit_without_calls)
 *   kept the idle connection known to the LB.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LB_ADDRESSES } from '../../netns/index.js';
import { startKeepwire } from '../keepwire.js';
import type { LabContext, Observation, Outcome, Variant } from '../scenario.js';
import type { HostName } from '../timeline.js';

const PEER = fileURLToPath(new URL('../grpc-peer-main.js', import.meta.url));
const PROXY_PORT = 8080;
const BACKEND_PORT = 50051;
/** Messages of the Watch stream: one before the pause, the rest after it. */
const MESSAGES = 3;

/** What a grpc peer reports (see grpc-peer-main.ts). */
interface PeerEvent {
  ev: string;
  at: number;
  n?: number;
  id?: number;
  method?: string;
  code?: number | string;
  name?: string;
  details?: string;
  received?: number;
  previousAttempts?: number;
  message?: string;
  ms?: number;
  deadlineMs?: number;
}

interface Setup {
  /** `grpc_socket_keepalive 1s:1s:3` on keepwire's upstream sockets. */
  socketKeepalive?: boolean;
  /** `grpc_ping_interval 1s` (with `grpc_ping_without_calls on` for the idle channel). */
  ping?: boolean;
  /** The client's service config retries UNAVAILABLE once. */
  clientRetry?: boolean;
}

function describe(label: HostName, e: PeerEvent): string | undefined {
  switch (e.ev) {
    case 'listening':
      return `grpc-js server listening on :${BACKEND_PORT}`;
    case 'call':
      return `grpc-js server receives ${e.method} call #${e.id}${e.previousAttempts ? ` (grpc-previous-rpc-attempts: ${e.previousAttempts}, a retry)` : ''}`;
    case 'sent':
      return `grpc-js server sends message ${e.n}`;
    case 'end':
      return 'grpc-js server ends the stream with OK';
    case 'cancelled':
      return `grpc-js server: ${e.method} call #${e.id} cancelled (its connection failed or the client cancelled)`;
    case 'start':
      return `grpc-js client calls ${e.method}${e.n === undefined ? '' : ` #${e.n}`} (deadline ${(e.deadlineMs ?? 0) / 1000}s)`;
    case 'message':
      return `grpc-js client receives message ${e.n}`;
    case 'idle':
      return `grpc-js client leaves the channel idle for ${(e.ms ?? 0) / 1000}s`;
    case 'status':
      return `grpc-js client gets status ${e.code} ${e.name}${e.details && e.details !== 'OK' ? `: ${e.details}` : ''}${e.previousAttempts ? ` after ${e.previousAttempts + 1} attempts` : ''}`;
    case 'error':
      return `${label}: error ${e.code}`;
    case 'fatal':
      return `${label}: ${e.message}`;
    default:
      return undefined;
  }
}

/** A grpc peer process in a namespace; its events go to `onEvent` and the timeline. */
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
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.once('exit', (code) => {
    if (code !== 0 && code !== null)
      onEvent({ ev: 'fatal', at: Date.now(), message: `exited ${code}: ${stderr.trim().slice(-300)}` });
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let e: PeerEvent;
    try {
      e = JSON.parse(line) as PeerEvent;
    } catch {
      return;
    }
    const what = describe(label, e);
    if (what) ctx.note(label, `grpc-${e.ev}`, what, e.at);
    onEvent(e);
  });
  return child;
}

/** A final gRPC status as an outcome: the client's own deadline is a timeout, UNAVAILABLE a proxy's answer. */
function outcomeOfStatus(code: number): Outcome {
  switch (code) {
    case 0:
      return 'response';
    case 4: // DEADLINE_EXCEEDED
      return 'timeout';
    case 14: // UNAVAILABLE: what a proxy answers when the upstream failed (nginx's 502 as gRPC)
      return 'gateway-error';
    case 1: // CANCELLED
    case 13: // INTERNAL: grpc-js's word for a stream reset without a status
      return 'reset';
    default:
      return 'error';
  }
}

async function startBackend(ctx: LabContext, pauseMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    spawnPeer(
      ctx,
      'backend',
      'backend',
      [
        'server',
        `${LB_ADDRESSES.backend}:${BACKEND_PORT}`,
        '--pause-ms',
        String(pauseMs),
        '--messages',
        String(MESSAGES),
      ],
      (e) => {
        if (e.ev === 'listening') resolve();
        if (e.ev === 'fatal') reject(new Error(`grpc server: ${e.message}`));
      },
    );
  });
}

async function startProxy(ctx: LabContext, setup: Setup, idleChannel: boolean): Promise<void> {
  const directives = [
    setup.socketKeepalive ? 'grpc_socket_keepalive 1s:1s:3;' : '',
    setup.ping ? 'grpc_ping_interval 1s;' : '',
    setup.ping ? 'grpc_ping_timeout 2s;' : '',
    setup.ping && idleChannel ? 'grpc_ping_without_calls on;' : '',
  ].filter(Boolean);
  ctx.note(
    'proxy',
    'config',
    `keepwire serve: listen 127.0.0.1:${PROXY_PORT}; http2 on; grpc_pass grpc://VIP:${BACKEND_PORT}; ${directives.join(' ') || '(no keepalive)'}`,
  );
  await startKeepwire(
    ctx,
    'client',
    `http {
    server {
        listen 127.0.0.1:${PROXY_PORT};
        http2 on;
        location / {
            grpc_pass grpc://${LB_ADDRESSES.vip}:${BACKEND_PORT};
            grpc_read_timeout 60s;
            ${directives.join('\n            ')}
        }
    }
}
`,
  );
  // keepwire owns the client namespace's sockets that face the LB.
  ctx.clientSide('proxy');
}

/** The client's events until its process reports what the scenario waits for. */
function runClient(
  ctx: LabContext,
  args: string[],
  done: (e: PeerEvent, seen: PeerEvent[]) => Observation | undefined,
  limitMs: number,
): Promise<Observation> {
  const seen: PeerEvent[] = [];
  const ended = new Promise<Observation>((resolve) => {
    spawnPeer(ctx, 'client', 'client', args, (e) => {
      seen.push(e);
      if (e.ev === 'fatal') resolve({ outcome: 'error', detail: `grpc client: ${e.message}` });
      const o = done(e, seen);
      if (o) resolve(o);
    });
  });
  const limit = ctx.sleep(limitMs).then(
    (): Observation => ({
      outcome: 'waiting',
      detail: `no final status within ${limitMs / 1000}s (the client's deadline did not fire)`,
    }),
  );
  return Promise.race([ended, limit]);
}

/** Server streaming across a quiet stretch of 2× the LB idle. */
async function quietStream(ctx: LabContext, setup: Setup): Promise<Observation> {
  const pauseMs = ctx.lbIdleS * 2000;
  const deadlineMs = pauseMs + ctx.lbIdleS * 3000;
  await startBackend(ctx, pauseMs);
  await startProxy(ctx, setup, false);
  return runClient(
    ctx,
    ['watch', `127.0.0.1:${PROXY_PORT}`, '--deadline-ms', String(deadlineMs)],
    (e, seen) => {
      if (e.ev !== 'status') return undefined;
      const code = Number(e.code);
      const received = e.received ?? 0;
      const start = seen.find((x) => x.ev === 'start')?.at ?? ctx.start;
      const tookS = (e.at - start) / 1000;
      const lastMessage = seen.filter((x) => x.ev === 'message').at(-1);
      const quietS = lastMessage ? ((e.at - lastMessage.at) / 1000).toFixed(1) : '-';
      const afterS = (e.at - ctx.start) / 1000;
      if (code === 0 && received === MESSAGES)
        return {
          outcome: 'response',
          detail: `all ${MESSAGES} messages and OK after ${tookS.toFixed(1)}s (${pauseMs / 1000}s quiet in the middle)`,
          afterS,
        };
      const outcome = code === 0 ? 'error' : outcomeOfStatus(code);
      // Hung: nothing came after the first message until the client's own deadline. Died: a status came before it.
      const how =
        code === 4 && tookS >= deadlineMs / 1000 - 0.5
          ? `the stream hung: nothing after message ${received} for ${quietS}s, until the client's own deadline`
          : `the stream died ${quietS}s after message ${received}`;
      return {
        outcome,
        detail: `${how}: ${e.name} (${e.details}) after ${tookS.toFixed(1)}s, ${received} of ${MESSAGES} messages`,
        afterS,
      };
    },
    deadlineMs + 15_000,
  );
}

/** A unary call on a channel left idle for 2× the LB idle. */
async function idleChannel(ctx: LabContext, setup: Setup): Promise<Observation> {
  const idleMs = ctx.lbIdleS * 2000;
  const deadlineMs = ctx.lbIdleS * 3000;
  await startBackend(ctx, 0);
  await startProxy(ctx, setup, true);
  return runClient(
    ctx,
    [
      'idle',
      `127.0.0.1:${PROXY_PORT}`,
      '--idle-ms',
      String(idleMs),
      '--deadline-ms',
      String(deadlineMs),
      ...(setup.clientRetry ? ['--retry'] : []),
    ],
    (e, seen) => {
      if (e.ev !== 'status') return undefined;
      const code = Number(e.code);
      if (e.n === 1)
        return code === 0
          ? undefined
          : { outcome: 'error', detail: `the first call failed: ${e.name} (${e.details})` };
      const start = seen.filter((x) => x.ev === 'start').at(-1)?.at ?? ctx.start;
      const tookS = ((e.at - start) / 1000).toFixed(1);
      const attempts = e.previousAttempts ? `${e.previousAttempts + 1} attempts` : 'one attempt';
      return {
        outcome: outcomeOfStatus(code),
        detail: `the call after ${idleMs / 1000}s idle: ${e.name}${code === 0 ? '' : ` (${e.details})`} in ${tookS}s, ${attempts}`,
        afterS: (e.at - ctx.start) / 1000,
      };
    },
    idleMs + deadlineMs * 2 + 15_000,
  );
}

export const grpc: Variant[] = [
  {
    scenario: 'grpc',
    name: 'stream-no-keepalive',
    summary:
      "server streaming, quiet for 2× the LB idle: nothing crosses the LB, it forgets keepwire's upstream session and the stream hangs",
    expected: () => 'timeout',
    needs: ['grpc-js'],
    run: (ctx) => quietStream(ctx, {}),
  },
  {
    scenario: 'grpc',
    name: 'stream-grpc_socket_keepalive',
    summary: 'grpc_socket_keepalive 1s:1s:3: TCP probes on the upstream leg keep the L4 LB session',
    expected: () => 'response',
    needs: ['grpc-js'],
    run: (ctx) => quietStream(ctx, { socketKeepalive: true }),
  },
  {
    scenario: 'grpc',
    name: 'stream-grpc_ping_interval',
    summary: 'grpc_ping_interval 1s: HTTP/2 PINGs on the upstream connection keep the LB session',
    expected: () => 'response',
    needs: ['grpc-js'],
    run: (ctx) => quietStream(ctx, { ping: true }),
  },
  {
    scenario: 'grpc',
    name: 'idle-no-keepalive',
    summary:
      "a unary call after the channel was idle 2× the LB idle, on keepwire's stale pooled upstream connection: neither keepwire nor grpc-js retries it",
    // rst: the LB resets the stale connection at once and keepwire answers UNAVAILABLE without a
    // retry (the call may have reached the server: never replayed, as nginx never replays a sent
    // POST); grpc-js passes the status on (a status from the far side is not transparently
    // retried; only a service-config retry policy would). drop: the call vanishes and the
    // client's deadline ends it.
    expected: (expiry) => (expiry === 'rst' ? 'gateway-error' : 'timeout'),
    needs: ['grpc-js'],
    run: (ctx) => idleChannel(ctx, {}),
  },
  {
    scenario: 'grpc',
    name: 'idle-client-retry',
    summary:
      "the same with the client's service-config retry policy (UNAVAILABLE, 2 attempts): the retry goes out on a fresh upstream connection",
    expected: (expiry) => (expiry === 'rst' ? 'response' : 'timeout'),
    needs: ['grpc-js'],
    run: (ctx) => idleChannel(ctx, { clientRetry: true }),
  },
  {
    scenario: 'grpc',
    name: 'idle-grpc_ping_interval',
    summary:
      'grpc_ping_interval 1s with grpc_ping_without_calls on: PINGs keep the idle upstream connection known to the LB',
    expected: () => 'response',
    needs: ['grpc-js'],
    run: (ctx) => idleChannel(ctx, { ping: true }),
  },
];
