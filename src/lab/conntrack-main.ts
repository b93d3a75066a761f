/**
 * Runs inside the lb namespace and reports when the kernel starts and stops
 * tracking each TCP session: the moment an LB-like conntrack table forgets a
 * session is the moment the load balancer "expired" it. /proc/net/nf_conntrack
 * shows the namespace of the reading process, so this must run inside it.
 *
 * Output: JSON lines {"ev":"ct-new"|"ct-state"|"ct-gone","flow":"src:sport>dst:dport","state":S,"at":ms}.
 */
import { readFileSync } from 'node:fs';

const POLL_MS = 50;
const seen = new Map<string, string>();

function at(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 10) / 10;
}

function poll(): void {
  let text = '';
  try {
    text = readFileSync('/proc/net/nf_conntrack', 'utf8');
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ ev: 'fatal', message: (error as Error).message, at: at() })}\n`);
    process.exit(1);
  }
  const now = new Map<string, string>();
  for (const line of text.split('\n')) {
    // ipv4 2 tcp 6 1 ESTABLISHED src=198.18.1.2 dst=198.18.0.100 sport=39906 dport=7000 src=... [ASSURED]
    const m = /\btcp\s+\d+\s+\d+\s+(\S+)\s+src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(line);
    if (m) now.set(`${m[2]}:${m[4]}>${m[3]}:${m[5]}`, m[1]!);
  }
  for (const [flow, state] of now) {
    const before = seen.get(flow);
    if (before === undefined)
      process.stdout.write(`${JSON.stringify({ ev: 'ct-new', flow, state, at: at() })}\n`);
    else if (before !== state)
      process.stdout.write(`${JSON.stringify({ ev: 'ct-state', flow, state, at: at() })}\n`);
  }
  for (const [flow, state] of seen) {
    if (!now.has(flow)) process.stdout.write(`${JSON.stringify({ ev: 'ct-gone', flow, state, at: at() })}\n`);
  }
  seen.clear();
  for (const [k, v] of now) seen.set(k, v);
}

poll();
process.stdout.write(`${JSON.stringify({ ev: 'ready', at: at() })}\n`);
setInterval(poll, POLL_MS);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
