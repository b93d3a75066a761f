/**
 * Heap bytes allocated per proxied keep-alive request, by the JavaScript
 * function that allocated them (issue #20: "allocation/GC" in where a
 * request's CPU goes). V8's sampling heap profiler, asked through the
 * inspector to keep the samples of objects the garbage collector already
 * freed (`includeObjectsCollectedByMajorGC/MinorGC`): that is every
 * allocation, not what is still alive at the end (which is all
 * `node --heap-prof` reports). Frames inlined by the optimising compiler are
 * reported as their own functions.
 *
 *   node dist/bench/allocations.js [--requests 20000] [--warmup 5000] [--interval 128]
 *   KEEPWIRE_BEFORE=/path/to/other/dist/src/cli/main.js   adds another build
 *
 * keepwire (`access_log off`, an upstream keep-alive pool of 64) in front of
 * an nginx backend answering 98 bytes; `warmup` keep-alive GETs over 16
 * connections, then sampling on (a SIGPWR to the process: the preload below,
 * only in this bench), `requests` more, sampling off and the profile written.
 * Bytes per request = the sampled bytes over `requests` (the profiler
 * samples every `interval` bytes on average, so a function allocating a
 * few bytes per request is still counted in proportion). Not a test.
 */
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  arg,
  freePort,
  keepAliveGets,
  MAIN,
  nginxBackendHttp,
  startNginx,
  Workspace,
  waitListening,
} from './common.js';

/** Loaded into keepwire with --import: each SIGPWR toggles sampling; the profile goes to KW_ALLOC_OUT. */
const PRELOAD = `
import { Session } from 'node:inspector';
import { renameSync, writeFileSync } from 'node:fs';
const session = new Session();
session.connect();
const post = (m, p) => new Promise((res, rej) => session.post(m, p, (e, r) => (e ? rej(e) : res(r))));
let on = false;
process.on('SIGPWR', async () => {
  if (!on) {
    on = true;
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', {
      samplingInterval: Number(process.env.KW_ALLOC_INTERVAL),
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    writeFileSync(process.env.KW_ALLOC_OUT + '.on', '');
    return;
  }
  const { profile } = await post('HeapProfiler.stopSampling');
  // Renamed into place: the bench reads it once it appears, never half written.
  writeFileSync(process.env.KW_ALLOC_OUT + '.part', JSON.stringify(profile));
  renameSync(process.env.KW_ALLOC_OUT + '.part', process.env.KW_ALLOC_OUT);
});
`;

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

async function fileAppears(path: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`bench/allocations: ${path} not written within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sampled bytes per function (`name file:line`), summed over the call tree. */
function byFunction(root: ProfileNode): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (n: ProfileNode) => {
    const cf = n.callFrame;
    const file = cf.url.replace(/^file:\/\/.*\/dist\//, '');
    const key = `${cf.functionName || '(anonymous)'} ${file || '(V8)'}:${cf.lineNumber + 1}`;
    out.set(key, (out.get(key) ?? 0) + n.selfSize);
    for (const c of n.children) walk(c);
  };
  walk(root);
  return out;
}

async function measure(ws: Workspace, name: string, main: string, backend: number): Promise<void> {
  const requests = arg('requests', 20000);
  const warmup = arg('warmup', 5000);
  const port = await freePort();
  const conf = ws.write(
    `${name.replace(/\W+/g, '-')}.conf`,
    `http {\n access_log off;\n upstream app { server 127.0.0.1:${backend}; keepalive 64; }\n server { listen 127.0.0.1:${port}; keepalive_requests 100000; location / { proxy_pass http://app; proxy_http_version 1.1; } }\n}\n`,
  );
  const preload = ws.write('alloc-preload.mjs', PRELOAD);
  const out = join(ws.dir, `${name.replace(/\W+/g, '-')}.json`);
  // The child inherits these (the preload reads them).
  Object.assign(process.env, { KW_ALLOC_OUT: out, KW_ALLOC_INTERVAL: String(arg('interval', 128)) });
  const child = ws.spawn(process.execPath, ['--import', preload, main, 'serve', '-c', conf]);
  await waitListening(port);
  await keepAliveGets(port, warmup, 16);
  child.kill('SIGPWR');
  await fileAppears(`${out}.on`);
  await keepAliveGets(port, requests, 16);
  child.kill('SIGPWR');
  await fileAppears(out);
  const profile = JSON.parse(readFileSync(out, 'utf8')) as { head: ProfileNode };
  const fns = [...byFunction(profile.head)].sort((a, b) => b[1] - a[1]);
  const total = fns.reduce((s, [, v]) => s + v, 0);
  process.stdout.write(
    `\n${name}: ${(total / requests).toFixed(0)} bytes allocated per request (${requests} requests after ${warmup} of warm-up)\n\n| function | bytes per request | share |\n|---|---|---|\n`,
  );
  for (const [fn, bytes] of fns.slice(0, 20))
    process.stdout.write(
      `| ${fn} | ${(bytes / requests).toFixed(0)} | ${((bytes / total) * 100).toFixed(1)} % |\n`,
    );
  child.kill('SIGTERM');
  await once(child, 'exit');
}

async function main(): Promise<void> {
  const ws = new Workspace('kw-allocations-');
  try {
    process.stdout.write(`date: ${new Date().toISOString()}\nnode: ${process.version}\n`);
    const backend = await freePort();
    startNginx(ws, 'backend', nginxBackendHttp(backend), { workers: 1 });
    await waitListening(backend);
    await measure(ws, 'keepwire', MAIN, backend);
    const before = process.env.KEEPWIRE_BEFORE;
    if (before !== undefined && existsSync(before)) await measure(ws, 'keepwire before', before, backend);
  } finally {
    await ws.stop();
  }
}

await main();
