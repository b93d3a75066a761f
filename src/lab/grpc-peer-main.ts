/**
 * gRPC peers (`@grpc/grpc-js`) for the lab's `grpc` scenario, run inside a
 * namespace and reporting what they see as JSON lines on stdout with
 * wall-clock timestamps. The service is `keepwire.lab.Lab` (grpc-service.ts):
 *
 *   grpc-peer-main server HOST:PORT --pause-ms N [--messages N]
 *     Watch (server streaming): sends message 1, stays quiet for --pause-ms,
 *     then sends 2..N and ends with OK. Ping (unary): answers at once.
 *   grpc-peer-main watch TARGET --deadline-ms N
 *     one Watch call; reports every message and the final status.
 *   grpc-peer-main idle TARGET --idle-ms N --deadline-ms N [--retry]
 *     one Ping, the channel idle for --idle-ms, then a second Ping on the same
 *     channel. `--retry`: a service-config retry policy (2 attempts on
 *     UNAVAILABLE), gRPC's own answer to a failed call.
 *
 * grpc-js's own keepalive (`grpc.keepalive_time_ms`) stays off in the client:
 * the scenario is about the proxy's upstream leg, the client talks to
 * keepwire over loopback.
 */
import * as grpc from '@grpc/grpc-js';
import { LAB_SERVICE } from './grpc-service.js';

const out = (ev: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ ev, at: Date.now(), ...fields })}\n`);

function option(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : Number(process.argv[i + 1]);
}

/** Status code names, for events a reader understands without the table. */
const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

function statusEvent(ev: string, e: grpc.StatusObject | grpc.ServiceError, extra = {}): void {
  const attempts = e.metadata?.get('grpc-previous-rpc-attempts')[0];
  out(ev, {
    code: e.code,
    name: CODE_NAMES[e.code] ?? String(e.code),
    // grpc-js appends its timing breakdown to a deadline's details: the first part is the message.
    details: e.details.split(',')[0],
    ...(attempts === undefined ? {} : { previousAttempts: Number(attempts) }),
    ...extra,
  });
}

const [role, where] = process.argv.slice(2);

if (role === 'server') {
  const pauseMs = option('pause-ms') ?? 0;
  const messages = option('messages') ?? 3;
  const server = new grpc.Server();
  let calls = 0;
  server.addService(LAB_SERVICE, {
    watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const id = ++calls;
      out('call', { method: 'Watch', id });
      let cancelled = false;
      let ended = false;
      // grpc-js also emits 'cancelled' when a finished call's stream closes: only an unfinished one counts.
      call.on('cancelled', () => {
        cancelled = true;
        if (!ended) out('cancelled', { method: 'Watch', id });
      });
      call.on('error', (e: NodeJS.ErrnoException) => out('error', { code: e.code ?? e.message }));
      call.write({ n: 1 });
      out('sent', { n: 1 });
      setTimeout(() => {
        if (cancelled) return;
        for (let n = 2; n <= messages; n++) {
          call.write({ n });
          out('sent', { n });
        }
        ended = true;
        call.end();
        out('end', { method: 'Watch', id });
      }, pauseMs);
    },
    ping: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      const id = ++calls;
      // grpc-js marks a retried attempt: the evidence that the client's retry policy ran.
      const previous = call.metadata.get('grpc-previous-rpc-attempts')[0];
      out('call', {
        method: 'Ping',
        id,
        ...(previous === undefined ? {} : { previousAttempts: Number(previous) }),
      });
      done(null, { pong: id });
    },
  });
  server.bindAsync(where!, grpc.ServerCredentials.createInsecure(), (error) => {
    if (error) {
      out('fatal', { message: error.message });
      process.exit(1);
    }
    out('listening');
  });
} else if (role === 'watch' || role === 'idle') {
  const deadlineMs = option('deadline-ms') ?? 30_000;
  const retry = process.argv.includes('--retry');
  const options: grpc.ChannelOptions = retry
    ? {
        'grpc.service_config': JSON.stringify({
          methodConfig: [
            {
              name: [{ service: 'keepwire.lab.Lab' }],
              retryPolicy: {
                maxAttempts: 2,
                initialBackoff: '0.1s',
                maxBackoff: '1s',
                backoffMultiplier: 2,
                retryableStatusCodes: ['UNAVAILABLE'],
              },
            },
          ],
        }),
      }
    : {};
  const Client = grpc.makeGenericClientConstructor(LAB_SERVICE, 'Lab');
  const client = new Client(where!, grpc.credentials.createInsecure(), options) as unknown as grpc.Client & {
    watch(req: unknown, opts: grpc.CallOptions): grpc.ClientReadableStream<{ n: number }>;
    ping(
      req: unknown,
      opts: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null, res?: unknown) => void,
    ): grpc.ClientUnaryCall;
  };
  const deadline = () => new Date(Date.now() + deadlineMs);
  if (role === 'watch') {
    let received = 0;
    const call = client.watch({}, { deadline: deadline() });
    out('start', { method: 'Watch', deadlineMs });
    call.on('data', (m: { n: number }) => {
      received++;
      out('message', { n: m.n });
    });
    // 'error' carries the status of a failed call, 'status' every status: report it once.
    call.on('error', () => {});
    call.on('status', (s: grpc.StatusObject) => {
      statusEvent('status', s, { received });
      client.close();
      setImmediate(() => process.exit(0));
    });
  } else {
    const idleMs = option('idle-ms') ?? 0;
    const ping = (n: number) =>
      new Promise<void>((resolve) => {
        out('start', { method: 'Ping', n, deadlineMs });
        let previousAttempts: number | undefined;
        const call = client.ping({}, { deadline: deadline() }, (e) => {
          if (e) statusEvent('status', e, { n });
          else out('status', { code: 0, name: 'OK', details: 'OK', n, previousAttempts });
          resolve();
        });
        // grpc-js adds the attempt count of a retried call to the response headers it hands over.
        call.on('metadata', (md: grpc.Metadata) => {
          const previous = md.get('grpc-previous-rpc-attempts')[0];
          if (previous !== undefined) previousAttempts = Number(previous);
        });
      });
    await ping(1);
    out('idle', { ms: idleMs });
    await new Promise((r) => setTimeout(r, idleMs));
    await ping(2);
    client.close();
    process.exit(0);
  }
} else {
  process.stderr.write(
    'usage: grpc-peer-main server HOST:PORT --pause-ms N | watch TARGET --deadline-ms N | idle TARGET --idle-ms N --deadline-ms N [--retry]\n',
  );
  process.exit(2);
}
