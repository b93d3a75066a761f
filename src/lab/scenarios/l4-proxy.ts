/**
 * The incident one hop further in: keepwire's stream proxy is the hop that
 * faces the backend through the LB (app → keepwire → LB → slow backend). The
 * upstream leg idles while the backend works; only `proxy_socket_keepalive`
 * below the LB's timer keeps it, and when the leg dies keepwire must tell the
 * app loudly (a reset), never leave it waiting on a dead session.
 */
import { LB_ADDRESSES } from '../../netns/index.js';
import { startKeepwire } from '../keepwire.js';
import { type LabContext, type Observation, outcomeOfError, type Variant } from '../scenario.js';

const BACKEND_PORT = 7000;
const PROXY_PORT = 9000;

/** `keepwire serve` in the client namespace, in front of the LB. */
async function startStreamProxy(ctx: LabContext, proxySocketKeepalive: string): Promise<void> {
  const directive = `proxy_socket_keepalive ${proxySocketKeepalive};`;
  ctx.note('proxy', 'config', `keepwire serve: ${directive}`);
  await startKeepwire(
    ctx,
    'client',
    `stream {
    server {
        listen 127.0.0.1:${PROXY_PORT};
        proxy_pass ${LB_ADDRESSES.vip}:${BACKEND_PORT};
        proxy_timeout 60s;
        ${directive}
    }
}
`,
  );
}

async function requestThroughProxy(ctx: LabContext, proxySocketKeepalive: string): Promise<Observation> {
  const backend = await ctx.agent('backend');
  await backend.listen({
    host: LB_ADDRESSES.backend,
    port: BACKEND_PORT,
    reply: 'answer\n',
    delayMs: ctx.lbIdleS * 2000,
  });
  await startStreamProxy(ctx, proxySocketKeepalive);
  ctx.clientSide('proxy');
  const app = await ctx.agent('client');
  await app.connect('app', { host: '127.0.0.1', port: PROXY_PORT });
  app.send({ op: 'send', id: 'app', data: 'request\n' });
  const timeoutMs = ctx.lbIdleS * 3000;
  ctx.note('client', 'request', `app sends a request through keepwire (its timeout: ${timeoutMs / 1000}s)`);
  const end = await app.maybe(
    (e) => e.id === 'app' && (e.ev === 'data' || e.ev === 'error' || e.ev === 'end'),
    timeoutMs,
  );
  if (!end) {
    ctx.note('client', 'timeout', 'app gives up: no answer within its timeout');
    return { outcome: 'timeout', detail: `no answer within ${timeoutMs / 1000}s` };
  }
  const afterS = (end.at - ctx.start) / 1000;
  if (end.ev === 'data') {
    ctx.note('client', 'response', `app receives ${JSON.stringify(end.data)}`, end.at);
    return { outcome: 'response', detail: 'answer received', afterS };
  }
  const outcome = end.ev === 'end' ? 'reset' : outcomeOfError(end.code);
  ctx.note('client', outcome, `app's connection ends: ${end.code ?? 'FIN'}`, end.at);
  return { outcome, detail: `${end.code ?? 'closed'} from keepwire`, afterS };
}

export const l4Proxy: Variant[] = [
  {
    scenario: 'l4-proxy',
    name: 'proxy-no-keepalive',
    summary: 'keepwire stream proxy, proxy_socket_keepalive off: the upstream leg idles past the LB',
    expected: () => 'timeout',
    run: (ctx) => requestThroughProxy(ctx, 'off'),
  },
  {
    scenario: 'l4-proxy',
    name: 'proxy-late-keepalive',
    summary: 'proxy_socket_keepalive idle above the LB idle: the leg dies, keepwire resets the app',
    expected: () => 'reset',
    run: (ctx) => requestThroughProxy(ctx, `${ctx.lbIdleS + 2}s:1s:3`),
  },
  {
    scenario: 'l4-proxy',
    name: 'proxy-keepalive',
    summary: 'proxy_socket_keepalive 1s:1s:3 on the upstream leg: the LB keeps the session',
    expected: () => 'response',
    run: (ctx) => requestThroughProxy(ctx, '1s:1s:3'),
  },
];
