/**
 * The seed's incident: a request whose answer takes longer than the LB's idle
 * timeout. While the backend works, nobody sends a byte; the LB forgets the
 * session; the answer never reaches the client. TCP keepalive on the backend's
 * socket (per socket, or enabled per socket with system-wide timings) sends
 * probes that keep the LB's session alive.
 */
import { LB_ADDRESSES, type SocketAgent } from '../../netns/index.js';
import { CERTIFICATE_NAME, type LabCertificate, labCertificate } from '../certificate.js';
import { startKeepwire } from '../keepwire.js';
import { startNginx } from '../nginx.js';
import {
  type LabContext,
  type Observation,
  outcomeOfError,
  outcomeOfStatus,
  type Variant,
} from '../scenario.js';

const BACKEND_PORT = 80;
const HTTPS_PORT = 443;
const APP_PORT = 8081;

/** The backend answers after twice the LB's idle timeout; the client waits three times it. */
async function requestThroughLb(
  ctx: LabContext,
  clientKeepalive?: { idle: number; interval: number; count: number },
  https?: LabCertificate,
) {
  const client = await ctx.agent('client');
  const timeoutMs = ctx.lbIdleS * 3000;
  client.send({
    op: 'http-client',
    id: 'c',
    origin: https
      ? `https://${LB_ADDRESSES.vip}:${HTTPS_PORT}`
      : `http://${LB_ADDRESSES.vip}:${BACKEND_PORT}`,
    ...(clientKeepalive ? { keepalive: clientKeepalive } : {}),
    // The client verifies the backend's certificate: TLS is end to end, the L4 LB only forwards segments.
    ...(https ? { tls: { ca: https.pem, servername: CERTIFICATE_NAME } } : {}),
  });
  await client.waitFor((e) => e.ev === 'http-client', 5_000);
  client.send({ op: 'http-request', id: 'c', rid: 'r1', path: '/report', timeoutMs });
  ctx.note(
    'client',
    'request',
    `client sends GET /report${https ? ' over TLS' : ''} (its timeout: ${timeoutMs / 1000}s)`,
  );
  const end = await client.waitFor(
    (e) => e.rid === 'r1' && (e.ev === 'response' || e.ev === 'http-error'),
    timeoutMs + 10_000,
  );
  if (end.ev === 'response') {
    ctx.note(
      'client',
      'response',
      `client receives ${end.status} ${String(end.body).trim()}`,
      end.at as number,
    );
    return {
      outcome: outcomeOfStatus(end.status as number),
      detail: `HTTP ${end.status}`,
      afterS: (end.at - ctx.start) / 1000,
    } as Observation;
  }
  const outcome = outcomeOfError(end.code);
  ctx.note(
    'client',
    outcome,
    `client request fails: ${end.code} ${end.message ?? ''}`.trim(),
    end.at as number,
  );
  return {
    outcome,
    detail: `${end.code}: ${end.message}`,
    afterS: (end.at - ctx.start) / 1000,
  } as Observation;
}

/** keepwire's library on a Node HTTP server: the backend that answers slowly. */
async function nodeBackend(
  ctx: LabContext,
  keepalive?: { enable?: boolean; idle?: number; interval?: number; count?: number },
) {
  const backend = await ctx.agent('backend');
  backend.send({
    op: 'http-listen',
    host: LB_ADDRESSES.backend,
    port: BACKEND_PORT,
    delayMs: ctx.lbIdleS * 2000,
    ...(keepalive ? { keepalive } : {}),
  });
  await backend.waitFor((e) => e.ev === 'http-listening' || e.ev === 'fatal', 5_000);
  watchBackend(ctx, backend);
}

function watchBackend(ctx: LabContext, backend: SocketAgent) {
  backend.onEvent((e) => {
    if (e.ev === 'http-request') ctx.note('backend', 'request', `app receives ${e.method} ${e.url}`, e.at);
    if (e.ev === 'http-responded') ctx.note('backend', 'respond', 'app sends its response', e.at);
    if (e.ev === 'http-socket-error') ctx.note('backend', 'reset', `app's socket fails: ${e.code}`, e.at);
  });
}

/** nginx in the backend namespace in front of a slow local app, as in the seed. */
async function nginxBackend(ctx: LabContext, listenParams: string, https?: LabCertificate) {
  const backend = await ctx.agent('backend');
  backend.send({ op: 'http-listen', host: '127.0.0.1', port: APP_PORT, delayMs: ctx.lbIdleS * 2000 });
  await backend.waitFor((e) => e.ev === 'http-listening' || e.ev === 'fatal', 5_000);
  watchBackend(ctx, backend);
  const listen = listenLine(listenParams, https);
  const nginx = await startNginx(ctx.lb.backend, {
    port: https ? HTTPS_PORT : BACKEND_PORT,
    server: `${listen}${https ? `\n    ${certificateLines(https)}` : ''}\n    location / { proxy_pass http://127.0.0.1:${APP_PORT}; proxy_read_timeout 60s; }`,
  });
  ctx.defer(() => nginx.stop());
  ctx.note('backend', 'config', `nginx: ${listen}`);
}

/** keepwire's own HTTP server (`keepwire serve`) in front of the slow app, configured like the nginx variants. */
async function keepwireBackend(ctx: LabContext, listenParams: string, https?: LabCertificate) {
  const backend = await ctx.agent('backend');
  backend.send({ op: 'http-listen', host: '127.0.0.1', port: APP_PORT, delayMs: ctx.lbIdleS * 2000 });
  await backend.waitFor((e) => e.ev === 'http-listening' || e.ev === 'fatal', 5_000);
  watchBackend(ctx, backend);
  const listen = listenLine(listenParams, https);
  ctx.note('backend', 'config', `keepwire serve: ${listen}`);
  await startKeepwire(
    ctx,
    'backend',
    `http {
    server {
        ${listen}${https ? `\n        ${certificateLines(https)}` : ''}
        location / {
            proxy_pass http://127.0.0.1:${APP_PORT};
            proxy_read_timeout 60s;
        }
    }
}
`,
    'backend',
  );
}

/** The backend's listen directive: port 80, or 443 with `ssl` over HTTPS. */
function listenLine(listenParams: string, https?: LabCertificate): string {
  const params = [...(https ? ['ssl'] : []), ...(listenParams ? [listenParams] : [])].join(' ');
  const port = https ? HTTPS_PORT : BACKEND_PORT;
  return `listen ${LB_ADDRESSES.backend}:${port}${params ? ` ${params}` : ''};`;
}

function certificateLines(https: LabCertificate): string {
  return `ssl_certificate ${https.cert}; ssl_certificate_key ${https.key};`;
}

const KEEPALIVE_1S = { idle: 1, interval: 1, count: 3 };

export const longRequest: Variant[] = [
  {
    scenario: 'long-request',
    name: 'no-keepalive',
    summary: 'Node backend without TCP keepalive; answer after 2x LB idle',
    expected: () => 'timeout',
    async run(ctx) {
      await nodeBackend(ctx);
      return requestThroughLb(ctx);
    },
  },
  {
    scenario: 'long-request',
    name: 'client-late-probe',
    summary: 'the client probes, but only after the LB forgot the session (idle = LB idle + 1s)',
    expected: (expiry) => (expiry === 'rst' ? 'reset' : 'keepalive-timeout'),
    async run(ctx) {
      await nodeBackend(ctx);
      return requestThroughLb(ctx, { idle: ctx.lbIdleS + 1, interval: 1, count: 3 });
    },
  },
  {
    scenario: 'long-request',
    name: 'backend-so_keepalive',
    summary: 'Node backend with keepwire applyKeepalive({idle:1, interval:1, count:3}) on accepted sockets',
    expected: () => 'response',
    async run(ctx) {
      await nodeBackend(ctx, KEEPALIVE_1S);
      return requestThroughLb(ctx);
    },
  },
  {
    scenario: 'long-request',
    name: 'backend-sysctl',
    summary: 'backend host net.ipv4.tcp_keepalive_time=1, intvl=1; the server only turns SO_KEEPALIVE on',
    expected: () => 'response',
    async run(ctx) {
      await setSystemKeepalive(ctx);
      await nodeBackend(ctx, { enable: true });
      return requestThroughLb(ctx);
    },
  },
  {
    scenario: 'long-request',
    name: 'keepwire-plain',
    summary: 'keepwire serve (HTTP) as the backend server, `listen ADDR:80;` without so_keepalive',
    expected: () => 'timeout',
    async run(ctx) {
      await keepwireBackend(ctx, '');
      return requestThroughLb(ctx);
    },
  },
  {
    scenario: 'long-request',
    name: 'keepwire-so_keepalive',
    summary: 'keepwire serve (HTTP) as the backend server, `listen ADDR:80 so_keepalive=1s:1s:3;`',
    expected: () => 'response',
    async run(ctx) {
      await keepwireBackend(ctx, 'so_keepalive=1s:1s:3');
      return requestThroughLb(ctx);
    },
  },
  {
    scenario: 'long-request',
    name: 'nginx-plain',
    summary: 'real nginx, `listen ADDR:80;` (no so_keepalive), proxying to the slow app',
    expected: () => 'timeout',
    needs: ['nginx'],
    async run(ctx) {
      await nginxBackend(ctx, '');
      return requestThroughLb(ctx);
    },
  },
  {
    scenario: 'long-request',
    name: 'nginx-so_keepalive',
    summary: 'real nginx, `listen ADDR:80 so_keepalive=1s:1s:3;` (the seed fix, scaled to the lab)',
    expected: () => 'response',
    needs: ['nginx'],
    async run(ctx) {
      await nginxBackend(ctx, 'so_keepalive=1s:1s:3');
      return requestThroughLb(ctx);
    },
  },
  {
    scenario: 'long-request',
    name: 'nginx-on-sysctl',
    summary: 'real nginx, `so_keepalive=on` with the system-wide sysctls on the backend host',
    expected: () => 'response',
    needs: ['nginx'],
    async run(ctx) {
      await setSystemKeepalive(ctx);
      await nginxBackend(ctx, 'so_keepalive=on');
      return requestThroughLb(ctx);
    },
  },
];

async function setSystemKeepalive(ctx: LabContext) {
  const wanted: [string, number][] = [
    ['net.ipv4.tcp_keepalive_time', 1],
    ['net.ipv4.tcp_keepalive_intvl', 1],
    ['net.ipv4.tcp_keepalive_probes', 3],
  ];
  const set: string[] = [];
  for (const [key, value] of wanted) if (await ctx.sysctl('backend', key, value)) set.push(`${key}=${value}`);
  if (set.length) ctx.note('backend', 'config', `sysctl ${set.join(' ')}`);
}

/**
 * The same incident over HTTPS: the client speaks TLS through the L4 LB to
 * the backend's `listen ... ssl`. TLS adds nothing on the wire while the app
 * works (no TLS-level keepalive exists), so the LB forgets the session just
 * the same, and TCP keepalive on the socket under TLS (so_keepalive, set on
 * the TCP socket before TLS wraps it) saves it just the same.
 */
export const longRequestHttps: Variant[] = [
  {
    scenario: 'long-request-https',
    name: 'keepwire-https-plain',
    summary: 'keepwire serve, `listen ADDR:443 ssl;` without so_keepalive; HTTPS client through the L4 LB',
    expected: () => 'timeout',
    needs: ['openssl'],
    async run(ctx) {
      const https = labCertificate(ctx);
      await keepwireBackend(ctx, '', https);
      return requestThroughLb(ctx, undefined, https);
    },
  },
  {
    scenario: 'long-request-https',
    name: 'keepwire-https-so_keepalive',
    summary:
      'keepwire serve, `listen ADDR:443 ssl so_keepalive=1s:1s:3;`: probes on the TCP socket under TLS',
    expected: () => 'response',
    needs: ['openssl'],
    async run(ctx) {
      const https = labCertificate(ctx);
      await keepwireBackend(ctx, 'so_keepalive=1s:1s:3', https);
      return requestThroughLb(ctx, undefined, https);
    },
  },
  {
    scenario: 'long-request-https',
    name: 'nginx-https-plain',
    summary: 'real nginx, `listen ADDR:443 ssl;` without so_keepalive',
    expected: () => 'timeout',
    needs: ['nginx', 'openssl'],
    async run(ctx) {
      const https = labCertificate(ctx);
      await nginxBackend(ctx, '', https);
      return requestThroughLb(ctx, undefined, https);
    },
  },
  {
    scenario: 'long-request-https',
    name: 'nginx-https-so_keepalive',
    summary: 'real nginx, `listen ADDR:443 ssl so_keepalive=1s:1s:3;`',
    expected: () => 'response',
    needs: ['nginx', 'openssl'],
    async run(ctx) {
      const https = labCertificate(ctx);
      await nginxBackend(ctx, 'so_keepalive=1s:1s:3', https);
      return requestThroughLb(ctx, undefined, https);
    },
  },
];
