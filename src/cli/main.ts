#!/usr/bin/env node
import inspector from 'node:inspector';
// Before any other module of ours: SIGUSR1 must never start Node's inspector (see no-inspector.ts).
import { inspectorAtStart } from './no-inspector.js';
import { run } from './program.js';

// A reader that goes away early (`keepwire lab --list | head -1`) is not an
// error of ours. Unix tools die quietly of SIGPIPE there; Node ignores
// SIGPIPE and raises EPIPE instead, which used to end in a stack trace. From
// the first EPIPE on, that stream's output is dropped and the command
// finishes with its own exit code (a lab run still removes its namespaces,
// `serve` keeps serving).
const closed = { out: false, err: false };
const quietOnEpipe = (stream: NodeJS.WriteStream, which: 'out' | 'err') =>
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    // `serve` says once that its log lines are lost; a one-shot command stays quiet.
    if (!closed[which] && which === 'out' && !closed.err && process.argv[2] === 'serve') {
      process.stderr.write('keepwire: standard output closed (EPIPE); log lines are dropped from now on\n');
    }
    closed[which] = true;
  });
quietOnEpipe(process.stdout, 'out');
quietOnEpipe(process.stderr, 'err');
const out = (text: string) => {
  if (!closed.out) process.stdout.write(text);
};
const err = (text: string) => {
  if (!closed.err) process.stderr.write(text);
};

const inspectorOpen = inspectorAtStart();
if (inspectorOpen !== undefined) {
  err(`keepwire: ${inspectorOpen.message}\n${inspectorOpen.hint ? `hint: ${inspectorOpen.hint}\n` : ''}`);
}
if (inspectorOpen?.refuse) {
  // Closed at once, not only at exit: nobody gets to attach while we leave.
  inspector.close();
  process.exitCode = 2;
} else {
  process.exitCode = await run(process.argv.slice(2), { out, err });
}
