#!/usr/bin/env node
// First import: SIGUSR1 must never start Node's inspector (see no-inspector.ts).
import { inspectorAtStart } from './no-inspector.js';
import { run } from './program.js';

const inspectorOpen = inspectorAtStart();
if (inspectorOpen !== undefined) {
  process.stderr.write(
    `keepwire: ${inspectorOpen.message}\n${inspectorOpen.hint ? `hint: ${inspectorOpen.hint}\n` : ''}`,
  );
}
if (inspectorOpen?.refuse) {
  process.exitCode = 2;
} else {
  const code = await run(process.argv.slice(2), {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  });
  process.exitCode = code;
}
