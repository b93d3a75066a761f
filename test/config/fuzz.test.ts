/**
 * Random mutations of the examples: whatever the text, the parser answers
 * with positioned diagnostics, never an exception, and quickly.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/index.js';
import { ROOT } from './support.js';

const ITERATIONS = 20_000;
const TIME_BUDGET_MS = 40_000;
const SLOW_PARSE_MS = 1_000;
const ALPHABET = ';{}"\'\\#$ ,:=\n\t*[]/.-_0123456789abcdefghijklmnopqrstuvwxyz';

/** mulberry32: a seeded generator, so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(text: string, rnd: () => number): string {
  let out = text;
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rnd() * (out.length + 1));
    const len = 1 + Math.floor(rnd() * 12);
    switch (Math.floor(rnd() * 5)) {
      case 0:
        out = out.slice(0, at) + out.slice(at + len);
        break;
      case 1:
        out = out.slice(0, at) + ALPHABET[Math.floor(rnd() * ALPHABET.length)]! + out.slice(at);
        break;
      case 2: {
        const from = Math.floor(rnd() * out.length);
        out = out.slice(0, at) + out.slice(from, from + len * 4) + out.slice(at);
        break;
      }
      case 3:
        out = out.slice(0, at) + ALPHABET[Math.floor(rnd() * ALPHABET.length)]! + out.slice(at + 1);
        break;
      default:
        out = out.slice(0, at);
    }
  }
  return out;
}

describe('fuzz', () => {
  it(`${ITERATIONS} mutations of the examples never throw or hang`, { timeout: TIME_BUDGET_MS * 2 }, () => {
    const seeds = ['keepwire.conf', 'stream.conf']
      .map((f) => path.join(ROOT, 'examples', f))
      .flatMap((f) => {
        try {
          return [readFileSync(f, 'utf8')];
        } catch {
          return [];
        }
      });
    assert.ok(seeds.length > 0);
    const seed = Date.now() >>> 0;
    const rnd = random(seed);
    const started = Date.now();
    let runs = 0;
    let withErrors = 0;
    // Files go under a name that cannot exist, so a mutated `include` reads nothing real.
    const file = path.join(ROOT, 'test', 'fixtures', 'config', 'fuzz-nonexistent', 'fuzz.conf');
    for (; runs < ITERATIONS && Date.now() - started < TIME_BUDGET_MS; runs++) {
      const text = mutate(seeds[runs % seeds.length]!, rnd);
      const t0 = Date.now();
      let result: ReturnType<typeof parseConfigText>;
      try {
        result = parseConfigText(text, file);
      } catch (error) {
        assert.fail(`seed ${seed} run ${runs}: threw ${(error as Error).stack}\n--- input ---\n${text}`);
      }
      assert.ok(Date.now() - t0 < SLOW_PARSE_MS, `seed ${seed} run ${runs}: slow parse`);
      const lines = text.split('\n');
      for (const d of result.diagnostics) {
        if (d.file !== file) continue;
        const ok =
          Number.isInteger(d.line) &&
          Number.isInteger(d.col) &&
          d.line >= 1 &&
          d.col >= 1 &&
          d.line <= lines.length &&
          d.col <= lines[d.line - 1]!.length + 1;
        assert.ok(ok, `seed ${seed} run ${runs}: unpositioned ${JSON.stringify(d)}\n--- input ---\n${text}`);
        assert.ok(d.message.length > 0);
      }
      assert.equal(
        result.config === undefined,
        result.diagnostics.some((d) => d.severity === 'error'),
      );
      if (result.config === undefined) withErrors++;
    }
    // The mutations must actually break things, or this test proves nothing.
    assert.ok(runs >= 1000, `only ${runs} runs in the time budget`);
    assert.ok(withErrors > runs / 4, `only ${withErrors}/${runs} mutations were invalid`);
  });
});
