/**
 * How fast a killed worker is replaced: `keepwire serve` with
 * `worker_processes 2` under a wrk keep-alive load; a worker is killed with
 * SIGKILL every `--every` seconds and the time from the kill to its
 * replacement's `started` line (listening, serving) is measured.
 *
 *   node dist/bench/workers.js [--kills 5] [--every 2] [--connections 64]
 *
 * Not a test: prints each kill's replacement time, their median and maximum,
 * and the errors wrk saw over the whole run (the killed workers' own
 * connections are reset: that is the cost nginx has too when a worker dies).
 */

import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import {
  arg,
  freePort,
  MAIN,
  nginxBackendHttp,
  startNginx,
  version,
  Workspace,
  waitListening,
  wrk,
} from './common.js';

async function main(): Promise<void> {
  const kills = arg('kills', 5);
  const every = arg('every', 2);
  const connections = arg('connections', 64);
  const ws = new Workspace('keepwire-bench-workers-');
  try {
    const [backend, port] = [await freePort(), await freePort()];
    startNginx(ws, 'backend', nginxBackendHttp(backend));
    const conf = ws.write(
      'keepwire.conf',
      `worker_processes 2;
http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${port};
        keepalive_requests 100000;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
    }
}
`,
    );
    const master = ws.spawn(process.execPath, [MAIN, 'serve', '-c', conf], ['ignore', 'pipe', 'inherit']);
    // Workers serving now (pid → true), and who waits for the next one to be ready.
    const serving = new Set<number>();
    let onReady: ((pid: number) => void) | undefined;
    createInterface({ input: master.stdout! }).on('line', (line) => {
      let rec: { pid?: number; msg?: string; listen?: unknown };
      try {
        rec = JSON.parse(line);
      } catch {
        return;
      }
      // A worker's own `started` line (with its listeners) means it accepts now.
      if (rec.msg === 'started' && rec.listen && rec.pid !== master.pid && rec.pid !== undefined) {
        serving.add(rec.pid);
        onReady?.(rec.pid);
      }
    });
    await waitListening(backend);
    await waitListening(port);
    while (serving.size < 2) await new Promise((r) => setTimeout(r, 50));

    console.log(
      `${cpus().length} CPUs, Linux ${version('uname', ['-r'])}, node ${process.version}; load average at start ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    const load = wrk('load', port, kills * every + 2, connections);
    const times: number[] = [];
    for (let i = 0; i < kills; i++) {
      await new Promise((r) => setTimeout(r, every * 1000));
      const victim = [...serving][i % 2]!;
      serving.delete(victim);
      const ready = new Promise<number>((resolve) => {
        onReady = () => resolve(performance.now());
      });
      const t0 = performance.now();
      process.kill(victim, 'SIGKILL');
      const ms = (await ready) - t0;
      onReady = undefined;
      times.push(ms);
      console.log(`kill ${i + 1}: worker ${victim} replaced and listening after ${ms.toFixed(0)} ms`);
    }
    const r = await load;
    const sorted = [...times].sort((a, b) => a - b);
    console.log(
      `replacement time: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms over ${kills} kills`,
    );
    console.log(
      `load: ${r.requests} requests, ${Math.round(r.rps)} req/s, errors ${r.errorCount}${r.errors ? ` (${r.errors})` : ''}`,
    );
  } finally {
    await ws.stop();
  }
}

await main();
