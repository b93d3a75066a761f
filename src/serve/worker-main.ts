/**
 * A worker process of `keepwire serve` under a master (master.ts): it gets
 * the configuration the master checked and the listening descriptors the
 * master made, accepts on them, and serves until the master (or a signal
 * sent to the worker itself, as to an nginx worker) tells it to stop.
 *
 * It never reads the configuration file: a file edited between the master's
 * check and the worker's start cannot make two workers of one generation
 * run different configurations.
 */
import '../cli/no-inspector.js';
import { EventEmitter } from 'node:events';
import { collectLocal, type GatherTopic, setGatherTransport } from './gather.js';
import { ConfigStartError, Runtime } from './index.js';
import { COLLECT_TIMEOUT_MS, type ToMaster, type ToWorker } from './ipc.js';
import { createLog, runProcess, runtimeDeps } from './process.js';

function send(message: ToMaster): void {
  if (process.connected) process.send?.(message);
}

const io = {
  out: (text: string) => process.stdout.write(text),
  err: (text: string) => process.stderr.write(text),
};

async function main(start: Extract<ToWorker, { type: 'start' }>): Promise<number> {
  const log = createLog(io, true);
  const signals = new EventEmitter();
  // Signals sent to this worker's pid act as they do on the whole server
  // (nginx's workers take QUIT and TERM too); SIGHUP is for the master.
  for (const s of ['SIGHUP', 'SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const)
    process.on(s, () => signals.emit(s));

  // gather(topic) in this worker: the master asks every serving worker.
  let nextId = 1;
  const waiting = new Map<number, (answers: unknown[]) => void>();
  setGatherTransport(
    (topic: GatherTopic) =>
      new Promise<unknown[]>((resolve, reject) => {
        if (!process.connected) {
          reject(new Error('the master process is gone'));
          return;
        }
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`no answer from the master within ${2 * COLLECT_TIMEOUT_MS} ms`));
        }, 2 * COLLECT_TIMEOUT_MS);
        waiting.set(id, (answers) => {
          clearTimeout(timer);
          resolve(answers);
        });
        send({ type: 'gather', id, topic });
      }),
  );
  process.on('message', (message: ToWorker) => {
    if (message.type === 'signal') signals.emit(message.signal, message.reload ? 'reload' : message.signal);
    else if (message.type === 'gathered') {
      waiting.get(message.id)?.(message.answers);
      waiting.delete(message.id);
    } else if (message.type === 'collect')
      void collectLocal(message.topic).then(
        (value) => send({ type: 'collected', id: message.id, value }),
        () => send({ type: 'collected', id: message.id, value: undefined }),
      );
  });
  // The master is gone (killed): nobody supervises or reloads this worker
  // any more; drain and leave instead of serving on as an orphan.
  process.on('disconnect', () => signals.emit('SIGQUIT'));

  const runtime = new Runtime({
    ...runtimeDeps(log),
    inheritedFd: (key) => start.fds[key],
    // Structured clone delivers a Buffer as a plain Uint8Array.
    ticketKeys: Buffer.from(start.ticketKeys),
  });
  const io2 = {
    out: io.out,
    err: (text: string) => {
      // A start failure goes to the master, which prints it once for the generation.
      if (!started) send({ type: 'failed', message: text.trimEnd(), exitCode: 1 });
      else io.err(text);
    },
  };
  let started = false;
  const code = await runProcess({
    runtime,
    first: start.config,
    log,
    io: io2,
    signals,
    started: () => {
      started = true;
      send({ type: 'listening' });
    },
  });
  log.flush();
  return code;
}

process.once('message', (message: ToWorker) => {
  if (message.type !== 'start') return;
  main(message).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const text = error instanceof ConfigStartError ? error.message : String((error as Error).stack);
      send({ type: 'failed', message: text, exitCode: 1 });
      process.stderr.write(`${text}\n`);
      process.exit(1);
    },
  );
});
