/**
 * The incident one hop further in: keepwire's stream proxy is the hop that
 * faces the backend through the LB (app → keepwire → LB → slow backend). The
 * upstream leg idles while the backend works; only `proxy_socket_keepalive`
 * below the LB's timer keeps it, and when the leg dies keepwire must tell the
 * app loudly (a reset), never leave it waiting on a dead session.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LB_ADDRESSES } from '../../netns/index.js';
import { type LabContext, type Observation, outcomeOfError, type Variant } from '../scenario.js';

const MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const BACKEND_PORT = 7000;
const PROXY_PORT = 9000;

/** Starts `keepwire serve` in the client namespace; its session log lines go to the timeline. */
async function startKeepwire(ctx: LabContext, proxySocketKeepalive: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-lab-l4-'));
  ctx.defer(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'keepwire.conf');
  const directive = `proxy_socket_keepalive ${proxySocketKeepalive};`;
  writeFileSync(
    conf,
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
  ctx.note('proxy', 'config', `keepwire serve: ${directive}`);
  const child = ctx.lb.client.spawn(process.execPath, [MAIN, 'serve', '-c', conf]);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`keepwire serve did not start: ${stderr.trim()}`)),
      10_000,
    );
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`keepwire serve exited: ${stderr.trim()}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: { msg?: string; time?: string; reason?: string; detail?: string };
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if (entry.msg === 'started') {
        clearTimeout(timer);
        resolve();
      }
      if (entry.msg === 'session') {
        const at = entry.time ? Date.parse(entry.time) : Date.now();
        ctx.note(
          'proxy',
          'session-end',
          `keepwire logs the session's end: ${entry.reason}${entry.detail ? ` (${entry.detail})` : ''}`,
          at,
        );
      }
    });
  });
}

async function requestThroughProxy(ctx: LabContext, proxySocketKeepalive: string): Promise<Observation> {
  const backend = await ctx.agent('backend');
  await backend.listen({
    host: LB_ADDRESSES.backend,
    port: BACKEND_PORT,
    reply: 'answer\n',
    delayMs: ctx.lbIdleS * 2000,
  });
  await startKeepwire(ctx, proxySocketKeepalive);
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
