/**
 * Loaded into a `keepwire serve` under test with NODE_OPTIONS=--import (so
 * into the master and every worker it forks): in a worker (it has an IPC
 * channel), registers a `status` collector answering its pid and writes
 * what `gather('status')` returns to $KEEPWIRE_TEST_GATHER_DIR/PID.json,
 * every 200 ms. Only workers-gather.test.ts sets the variable.
 */
import { writeFileSync } from 'node:fs';
import { gather, registerCollector } from '../../src/serve/gather.js';

const dir = process.env.KEEPWIRE_TEST_GATHER_DIR;
if (dir && typeof process.send === 'function') {
  registerCollector('status', () => ({ pid: process.pid }));
  const tick = async () => {
    let text: string;
    try {
      text = JSON.stringify(await gather('status'));
    } catch (error) {
      text = JSON.stringify({ error: (error as Error).message });
    }
    writeFileSync(`${dir}/${process.pid}.json.tmp`, text);
    // rename: the test never reads a half-written file.
    (await import('node:fs')).renameSync(`${dir}/${process.pid}.json.tmp`, `${dir}/${process.pid}.json`);
    setTimeout(tick, 200).unref();
  };
  setTimeout(tick, 200).unref();
}
