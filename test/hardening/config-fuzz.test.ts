/**
 * A seeded config fuzzer through `keepwire check --json -c FILE` (issue
 * #22): the examples mutated token by token (deleted, duplicated, inserted),
 * with random bytes, unbalanced braces and huge numbers. Whatever the file,
 * `check` exits 0, 1 or 2, never throws (a stack trace on a user's
 * terminal), prints a JSON array, and gives every error a line and column
 * inside the file.
 *
 * Most cases run the real command in-process (`run(['check', ...])`, the
 * same code as the CLI after argv); a sample spawns the CLI itself.
 * KEEPWIRE_FUZZ_CONFIG_COUNT=N for a longer run; KEEPWIRE_FUZZ_SEED=S replays.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { run } from '../../src/cli/program.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import { MAIN, ROOT, tempDir } from '../support.js';
import { fuzzSeed, random } from './support.js';

const COUNT = Number(process.env.KEEPWIRE_FUZZ_CONFIG_COUNT ?? 800);
/** Spawning node costs about a second on a loaded machine: a sample only. */
const SPAWNED = Math.min(COUNT, 10);
const BUDGET_MS = Number(process.env.KEEPWIRE_FUZZ_BUDGET_MS ?? 40_000);
const MIN_CASES = Math.min(COUNT, 200);
const STACK_TRACE = /^\s+at .+(:\d+:\d+\)?|\(native\))$|Uncaught|TypeError|RangeError|ReferenceError/m;

const EXAMPLES = readdirSync(join(ROOT, 'examples'))
  .filter((f) => f.endsWith('.conf'))
  .map((f) => readFileSync(join(ROOT, 'examples', f), 'latin1'));

/** Tokens and the separators between them, so that a join gives the text back. */
function tokens(text: string): string[] {
  return text.split(/(\s+|[;{}])/).filter((s) => s !== '');
}

const NUMBERS = [
  '99999999999999999999999',
  '1e309',
  '-1',
  '0',
  '4294967296',
  '9007199254740993',
  '1h99999999d',
];
const FRAGMENTS = [
  '{',
  '}',
  ';',
  '"',
  "'",
  '\\',
  '#',
  '$',
  '*',
  'include',
  'http',
  'server',
  'location',
  'upstream',
  'listen',
  'proxy_pass',
  'so_keepalive=',
  ':::',
  '[::1]:',
  'return',
  'events',
  '\0',
  '\u00e9',
  '\n',
];

function mutate(text: string, rnd: () => number): string {
  let out = text;
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const toks = tokens(out);
    const i = Math.floor(rnd() * (toks.length + 1));
    switch (Math.floor(rnd() * 8)) {
      case 0:
        toks.splice(i, 1 + Math.floor(rnd() * 3));
        break;
      case 1:
        toks.splice(i, 0, ...toks.slice(i, i + 1 + Math.floor(rnd() * 4)));
        break;
      case 2:
        toks.splice(i, 0, FRAGMENTS[Math.floor(rnd() * FRAGMENTS.length)]!);
        break;
      case 3:
        toks.splice(i, 0, rnd() < 0.5 ? '{' : '}');
        break;
      case 4: {
        // A number made huge, negative or odd.
        const nums = toks.map((t, j) => (/\d/.test(t) ? j : -1)).filter((j) => j >= 0);
        if (nums.length > 0) {
          const j = nums[Math.floor(rnd() * nums.length)]!;
          toks[j] = toks[j]!.replace(/\d+/, NUMBERS[Math.floor(rnd() * NUMBERS.length)]!);
        }
        break;
      }
      case 5: {
        // Random bytes, any of 256.
        let junk = '';
        for (let b = 0, m = 1 + Math.floor(rnd() * 6); b < m; b++)
          junk += String.fromCharCode(Math.floor(rnd() * 256));
        toks.splice(i, 0, junk);
        break;
      }
      case 6:
        if (rnd() < 0.1) {
          // Deep nesting: a recursive parser must not overflow its stack.
          const depth = 1 + Math.floor(rnd() * 20_000);
          toks.splice(i, 0, 'server { '.repeat(depth), rnd() < 0.5 ? '}'.repeat(depth) : '');
          break;
        }
        // Truncate.
        toks.length = i;
        break;
      default: {
        // Swap two tokens.
        const j = Math.floor(rnd() * toks.length);
        if (i < toks.length) [toks[i], toks[j]] = [toks[j]!, toks[i]!];
      }
    }
    out = toks.join('');
  }
  return out;
}

/** What the assertions need from one run of `check`. */
interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function checkProblems(file: string, text: string, o: Outcome): string[] {
  const problems: string[] = [];
  if (o.code !== 0 && o.code !== 1 && o.code !== 2) problems.push(`exit code ${o.code}`);
  if (STACK_TRACE.test(o.stderr)) problems.push(`stack trace on stderr:\n${o.stderr}`);
  let diagnostics: Diagnostic[];
  try {
    diagnostics = JSON.parse(o.stdout) as Diagnostic[];
  } catch {
    problems.push(`stdout is not JSON: ${JSON.stringify(o.stdout.slice(0, 200))}`);
    return problems;
  }
  if (!Array.isArray(diagnostics)) return [...problems, 'stdout is not a JSON array'];
  const lines = text.split('\n');
  for (const d of diagnostics) {
    if (d.severity !== 'error') continue;
    const positioned = Number.isInteger(d.line) && Number.isInteger(d.col) && d.line >= 1 && d.col >= 1;
    if (!positioned) problems.push(`error without line and column: ${JSON.stringify(d)}`);
    else if (d.file === file && (d.line > lines.length || d.col > lines[d.line - 1]!.length + 1))
      problems.push(`error positioned outside the file: ${JSON.stringify(d)}`);
    if (typeof d.message !== 'string' || d.message === '')
      problems.push(`error without message: ${JSON.stringify(d)}`);
  }
  if (o.code === 0 && diagnostics.some((d) => d.severity === 'error')) problems.push('exit 0 with errors');
  if (o.code === 1 && !diagnostics.some((d) => d.severity === 'error'))
    problems.push('exit 1 without an error');
  return problems;
}

async function inProcess(file: string): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  let code: number | null;
  try {
    code = await run(['check', '--json', '-c', file], {
      out: (s) => {
        stdout += s;
      },
      err: (s) => {
        stderr += s;
      },
    });
  } catch (error) {
    // What main.ts would let escape: Node prints it with its stack and exits 1.
    code = 1;
    stderr += `${(error as Error).stack}\n`;
  }
  return { code, stdout, stderr };
}

function spawned(file: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'check', '--json', '-c', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keepwire check did not exit within 20 s for ${file}`));
    }, 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test(`config fuzzer: ${COUNT} mutated configs through keepwire check --json`, {
  timeout: BUDGET_MS + 60_000,
}, async (t) => {
  assert.ok(EXAMPLES.length > 0, 'no examples/*.conf to mutate');
  const seed = fuzzSeed('KEEPWIRE_FUZZ_SEED');
  const replay = `seed ${seed} (replay with KEEPWIRE_FUZZ_SEED=${seed})`;
  const rnd = random(seed);
  // Mutated `include`s resolve in this empty directory: they read nothing real.
  const dir = tempDir('keepwire-config-fuzz-', t);
  const started = Date.now();
  const codes = new Map<number | null, number>();
  let ran = 0;
  for (; ran < COUNT && Date.now() - started < BUDGET_MS; ran++) {
    const text = mutate(EXAMPLES[ran % EXAMPLES.length]!, rnd);
    const file = join(dir, `case-${ran}.conf`);
    writeFileSync(file, text, 'latin1');
    // Spread the spawned sample over the run.
    const viaCli = ran % Math.max(1, Math.floor(COUNT / SPAWNED)) === 0;
    const outcome = viaCli ? await spawned(file) : await inProcess(file);
    codes.set(outcome.code, (codes.get(outcome.code) ?? 0) + 1);
    const problems = checkProblems(file, text, outcome);
    assert.deepEqual(
      problems,
      [],
      `${replay}, case ${ran}${viaCli ? ' (CLI)' : ''}:\n--- input ---\n${text}\n--- stdout ---\n${outcome.stdout.slice(0, 2000)}`,
    );
  }
  const summary = `config fuzzer: ${ran} configs in ${Date.now() - started} ms, ${replay}, exit codes ${JSON.stringify(Object.fromEntries(codes))}`;
  console.log(summary);
  t.diagnostic(summary);
  assert.ok(ran >= MIN_CASES, `${replay}: only ${ran} cases within ${BUDGET_MS} ms`);
  // The mutations must break configs, and some must survive, or this proves little.
  assert.ok((codes.get(1) ?? 0) > ran / 4, `${replay}: too few invalid configs: ${summary}`);
});
