/**
 * A seeded request fuzzer against `keepwire serve` as a child process
 * (issue #22): the framing corpus mutated (byte flips, inserts, deletions,
 * truncations, duplicated header lines, CRLF games, spliced requests),
 * sent on many connections at once, some in pieces, most followed by the
 * client's FIN. Whatever arrives, keepwire must stay up with no stack trace
 * on stderr, close every connection within its configured timeouts, and
 * afterwards hold no more fds than before, still serve its full
 * worker_connections, and have grown its RSS by a bounded amount (printed).
 *
 * CI runs a few thousand inputs. Long mode: KEEPWIRE_FUZZ_LONG=1 (100,000
 * inputs, up to 30 minutes), or KEEPWIRE_FUZZ_COUNT=N and
 * KEEPWIRE_FUZZ_BUDGET_MS=M; KEEPWIRE_FUZZ_SEED=S replays a run.
 * KEEPWIRE_FUZZ_TRACE_FDS=1 sends one input at a time and names every input
 * after which keepwire holds an extra fd (to find what an fd leak comes from).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { CASES } from './corpus.js';
import {
  exchange,
  fdCount,
  fuzzSeed,
  random,
  recordingBackend,
  rssBytes,
  serverBlock,
  settleFds,
  startKeepwire,
} from './support.js';

const LONG = process.env.KEEPWIRE_FUZZ_LONG === '1';
const COUNT = Number(process.env.KEEPWIRE_FUZZ_COUNT ?? (LONG ? 100_000 : 3_000));
const BUDGET_MS = Number(process.env.KEEPWIRE_FUZZ_BUDGET_MS ?? (LONG ? 30 * 60_000 : 30_000));
/** At least this many inputs must run within the budget, or the run proves too little. */
const MIN_INPUTS = Math.min(COUNT, 1_000);
const TRACE_FDS = process.env.KEEPWIRE_FUZZ_TRACE_FDS === '1';
const CONCURRENCY = TRACE_FDS ? 1 : 32;
const WORKER_CONNECTIONS = 128;
/** Short timeouts, so that every connection ends on its own quickly. */
const TIMEOUTS = { clientHeader: '1s', clientBody: '1s', keepalive: '1s', proxyRead: '2s' };
/**
 * The longest a connection can legitimately stay open: a head just in time
 * (1 s), a body just in time (1 s), the upstream's answer (2 s), the
 * keep-alive wait (1 s); twice that, for a loaded machine.
 */
const HANG_MS = 10_000;
/** RSS growth allowed over the CI run (measured about 10-20 MB; twice the worst seen plus slack). */
const RSS_GROWTH_LIMIT = 96 * 1024 * 1024;
const STACK_TRACE =
  /^\s+at .+(:\d+:\d+\)?|\(native\))$|Uncaught|TypeError|RangeError|ReferenceError|FATAL ERROR/m;

const BASES = CASES.map((c) => (typeof c.raw === 'string' ? Buffer.from(c.raw, 'latin1') : c.raw));
const INTERESTING = Buffer.from('\r\n\0 \t:;,-_/%.0123456789aAfFxX\x0b\x7f\xff', 'latin1');

/** One mutation of `input`, chosen by `rnd`. */
function mutateOnce(input: Buffer, rnd: () => number): Buffer {
  const at = Math.floor(rnd() * (input.length + 1));
  const pick = (b: Buffer) => b[Math.floor(rnd() * b.length)]!;
  switch (Math.floor(rnd() * 10)) {
    case 0: {
      // Flip one bit.
      if (input.length === 0) return input;
      const out = Buffer.from(input);
      const i = Math.min(at, out.length - 1);
      out[i] = out[i]! ^ (1 << Math.floor(rnd() * 8));
      return out;
    }
    case 1:
      return Buffer.concat([input.subarray(0, at), Buffer.from([pick(INTERESTING)]), input.subarray(at)]);
    case 2:
      return Buffer.concat([input.subarray(0, at), input.subarray(at + 1 + Math.floor(rnd() * 8))]);
    case 3:
      return input.subarray(0, at);
    case 4: {
      // Duplicate one header line.
      const lines = input.toString('latin1').split('\r\n');
      const i = 1 + Math.floor(rnd() * Math.max(1, lines.length - 2));
      lines.splice(i, 0, lines[i] ?? '');
      return Buffer.from(lines.join('\r\n'), 'latin1');
    }
    case 5: {
      // CRLF games: one line ending becomes LF, CR, CRCRLF or LFCR.
      const s = input.toString('latin1');
      const ends = [...s.matchAll(/\r\n/g)].map((m) => m.index!);
      if (ends.length === 0) return input;
      const i = ends[Math.floor(rnd() * ends.length)]!;
      const by = ['\n', '\r', '\r\r\n', '\n\r', '\r\n\r\n', ''][Math.floor(rnd() * 6)]!;
      return Buffer.from(s.slice(0, i) + by + s.slice(i + 2), 'latin1');
    }
    case 6: {
      // Splice another corpus entry in (pipelining, smuggling shapes).
      const other = BASES[Math.floor(rnd() * BASES.length)]!;
      return Buffer.concat([input.subarray(0, at), other]);
    }
    case 7: {
      // A header that changes framing or routing, inserted after the request line.
      const s = input.toString('latin1');
      const nl = s.indexOf('\r\n');
      if (nl < 0) return input;
      const header = [
        'Transfer-Encoding: chunked',
        'Content-Length: 0',
        `Content-Length: ${Math.floor(rnd() * 64)}`,
        'Connection: Upgrade\r\nUpgrade: websocket',
        'Connection: close',
        'Expect: 100-continue',
        'Host: y',
        'Transfer-Encoding: chunked, chunked',
      ][Math.floor(rnd() * 8)]!;
      return Buffer.from(`${s.slice(0, nl + 2)}${header}\r\n${s.slice(nl + 2)}`, 'latin1');
    }
    case 8: {
      // A number made huge or odd.
      const s = input.toString('latin1');
      const nums = [...s.matchAll(/\d+/g)];
      if (nums.length === 0) return input;
      const m = nums[Math.floor(rnd() * nums.length)]!;
      const by = ['99999999999999999999', '-1', '0x10', '1e3', ' 5', '00000000000000000005'][
        Math.floor(rnd() * 6)
      ]!;
      return Buffer.from(s.slice(0, m.index!) + by + s.slice(m.index! + m[0].length), 'latin1');
    }
    default: {
      // Overwrite a short run with random bytes.
      const out = Buffer.from(input);
      for (let k = 0, n = 1 + Math.floor(rnd() * 4); k < n && at + k < out.length; k++)
        out[at + k] = Math.floor(rnd() * 256);
      return out;
    }
  }
}

interface Input {
  index: number;
  bytes: Buffer;
  /** Send FIN after the bytes (most inputs), or leave the proxy's timeouts to end it. */
  fin: boolean;
  /** Write in this many pieces, one event-loop turn apart. */
  pieces: number;
}

function makeInput(index: number, rnd: () => number): Input {
  let bytes = BASES[Math.floor(rnd() * BASES.length)]!;
  for (let k = 0, n = 1 + Math.floor(rnd() * 4); k < n; k++) bytes = mutateOnce(bytes, rnd);
  return { index, bytes, fin: rnd() < 0.9, pieces: rnd() < 0.3 ? 2 + Math.floor(rnd() * 3) : 1 };
}

/** Sends one input; resolves with how long the proxy took to close the connection, or -1 past HANG_MS. */
function fire(port: number, input: Input): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let done = false;
    const finish = (ms: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(ms);
    };
    const timer = setTimeout(() => finish(-1), HANG_MS);
    s.on('data', () => {});
    s.on('error', () => finish(Date.now() - started));
    s.on('close', () => finish(Date.now() - started));
    s.once('connect', async () => {
      const size = Math.ceil(input.bytes.length / input.pieces);
      for (let at = 0; at < input.bytes.length && !s.destroyed; at += size) {
        s.write(input.bytes.subarray(at, at + size));
        if (input.pieces > 1) await new Promise((r) => setImmediate(r));
      }
      if (input.fin && !s.destroyed) s.end();
    });
  });
}

function show(input: Input): string {
  return `input ${input.index} (fin ${input.fin}, ${input.pieces} piece(s)): ${JSON.stringify(input.bytes.toString('latin1'))}`;
}

test(`request fuzzer: ${COUNT} mutated requests against keepwire serve, no crash, hang, fd or slot leak`, {
  timeout: BUDGET_MS + 120_000,
}, async (t) => {
  const seed = fuzzSeed('KEEPWIRE_FUZZ_SEED');
  const replay = `seed ${seed} (replay with KEEPWIRE_FUZZ_SEED=${seed})`;
  const backend = await recordingBackend();
  t.after(() => backend.close());
  const kw = await startKeepwire(t, (port) => serverBlock(port, backend.port, TIMEOUTS), WORKER_CONNECTIONS);
  // Warm up (lazy modules, first upstream connection), then the baseline.
  for (const c of CASES.slice(0, 4)) {
    await exchange(kw.port, Buffer.from(c.raw as string, 'latin1'), 1);
  }
  const fdBefore = await settleFds(kw.pid, 0, 0);
  const rssBefore = rssBytes(kw.pid);

  const rnd = random(seed);
  const started = Date.now();
  const hangs: Input[] = [];
  let next = 0;
  let ran = 0;
  let slowestMs = 0;
  const rssSeries: string[] = [];
  const worker = async () => {
    while (next < COUNT && Date.now() - started < BUDGET_MS && kw.alive()) {
      const input = makeInput(next++, rnd);
      const fdsBefore = TRACE_FDS ? fdCount(kw.pid) : 0;
      const ms = await fire(kw.port, input);
      ran++;
      if (TRACE_FDS && (await settleFds(kw.pid, fdsBefore, 2_000)) > fdsBefore)
        console.log(`fd kept after ${show(input)}`);
      if (ms < 0) hangs.push(input);
      else slowestMs = Math.max(slowestMs, ms);
      // The backend keeps what it saw only for the differential: forget it here.
      if (ran % 256 === 0) backend.reset();
      // RSS along the way: a plateau is a warmed-up heap, a steady climb a leak.
      if (ran % Math.max(1, Math.floor(COUNT / 10)) === 0 && kw.alive())
        rssSeries.push(`${ran}:${(rssBytes(kw.pid) / 2 ** 20).toFixed(0)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsedMs = Date.now() - started;

  assert.ok(kw.alive(), `keepwire exited during the run, ${replay}; stderr:\n${kw.stderr()}`);
  assert.doesNotMatch(kw.stderr(), STACK_TRACE, `${replay}: stack trace on stderr`);
  assert.deepEqual(
    hangs.slice(0, 5).map(show),
    [],
    `${replay}: ${hangs.length} connection(s) still open after ${HANG_MS} ms`,
  );
  assert.ok(ran >= MIN_INPUTS, `${replay}: only ${ran} inputs in ${BUDGET_MS} ms`);

  // Every connection is closed on the client side: keepwire must let go of all of them.
  const fdAfter = await settleFds(kw.pid, fdBefore, 15_000);
  const rssAfter = rssBytes(kw.pid);
  const summary =
    `request fuzzer: ${ran} inputs in ${elapsedMs} ms (${CONCURRENCY} at a time), ${replay}; ` +
    `slowest close ${slowestMs} ms; fds ${fdBefore} -> ${fdAfter}; ` +
    `RSS ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfter / 2 ** 20).toFixed(1)} MiB ` +
    `(+${((rssAfter - rssBefore) / 2 ** 20).toFixed(1)}, limit +${RSS_GROWTH_LIMIT / 2 ** 20}; ` +
    `inputs:MiB ${rssSeries.join(' ')})`;
  console.log(summary);
  t.diagnostic(summary);
  assert.ok(fdAfter <= fdBefore, `${replay}: keepwire holds ${fdAfter - fdBefore} more fd(s) after the run`);
  assert.ok(rssAfter - rssBefore < RSS_GROWTH_LIMIT, `${replay}: ${summary}`);

  // No connection slot leaked either: worker_connections minus a margin for the
  // upstream legs, held at once, all answered.
  const held = Math.floor(WORKER_CONNECTIONS / 2) - 4;
  const sockets = await Promise.all(
    Array.from(
      { length: held },
      () =>
        new Promise<import('node:net').Socket>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port: kw.port });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  try {
    const answers = await Promise.all(
      sockets.map(
        (s) =>
          new Promise<string>((resolve) => {
            let got = '';
            const timer = setTimeout(() => resolve(got), 10_000);
            s.on('data', (d: Buffer) => {
              got += d.toString('latin1');
              if (got.includes('\r\n\r\nok')) {
                clearTimeout(timer);
                resolve(got);
              }
            });
            s.on('error', () => resolve(got));
            s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
          }),
      ),
    );
    const ok = answers.filter((a) => a.startsWith('HTTP/1.1 200')).length;
    assert.equal(
      ok,
      held,
      `${replay}: only ${ok} of ${held} connections held at once were served after the run`,
    );
  } finally {
    for (const s of sockets) s.destroy();
  }
});
