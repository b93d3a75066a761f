/**
 * Evidence from inside the load balancer's namespace: conntrack (when the LB
 * starts and stops tracking a session) and a packet capture (keepalive probes,
 * resets, packets of forgotten sessions). The lab's timeline shows what these
 * saw, not what the scenario expected to happen.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { hasCommand, LB_ADDRESSES, type LbTopology } from '../netns/index.js';
import type { TimelineEvent } from './timeline.js';

const CONNTRACK_MAIN = fileURLToPath(new URL('./conntrack-main.js', import.meta.url));
/** A bare ACK after this much silence on a flow is a keepalive probe (or its answer). */
const PROBE_SILENCE_MS = 800;

export const tcpdumpAvailable = (): boolean => hasCommand('tcpdump');

interface Packet {
  at: number;
  iface: string;
  dir: 'In' | 'Out';
  src: string;
  sport: number;
  dst: string;
  dport: number;
  flags: string;
  length: number;
}

// 1795617897.424154 toclient In  IP 198.18.1.2.39906 > 198.18.0.100.7000: Flags [S], seq 1, ..., length 0
const LINE =
  /^(\d+\.\d+) (\S+) +(In|Out) +IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): Flags \[([^\]]*)\].*?length (\d+)/;

export function parseTcpdumpLine(line: string): Packet | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  return {
    at: Number(m[1]) * 1000,
    iface: m[2]!,
    dir: m[3] as 'In' | 'Out',
    src: m[4]!,
    sport: Number(m[5]),
    dst: m[6]!,
    dport: Number(m[7]),
    flags: m[8]!,
    length: Number(m[9]),
  };
}

export class LbObserver {
  readonly events: TimelineEvent[] = [];
  readonly capture: boolean;
  /** Who owns the sockets in the client namespace that face the LB (the client, or a proxy there). */
  clientSide: TimelineEvent['host'] = 'client';
  private readonly children: ChildProcess[] = [];
  private readonly lastPacket = new Map<number, number>();
  private lastBackendRst = 0;
  private lastUntranslated = 0;
  /** Per side and flow: length of the last data segment, to tell retransmissions. */
  private readonly lastData = new Map<string, number>();

  /** Last packet either way per L7 leg and flow (`iface:port`). */
  private readonly lastOnLeg = new Map<string, number>();

  private constructor(
    capture: boolean,
    /** The LB terminates TCP (`--lb l7`): two legs, nothing translated. */
    private readonly l7: boolean,
  ) {
    this.capture = capture;
  }

  static async start(lb: LbTopology): Promise<LbObserver> {
    const observer = new LbObserver(tcpdumpAvailable(), lb.kind === 'l7');
    const ct = lb.lb.spawn(process.execPath, [CONNTRACK_MAIN]);
    observer.children.push(ct);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('conntrack watcher did not start')), 10_000);
      createInterface({ input: ct.stdout! }).on('line', (line) => {
        const e = JSON.parse(line) as {
          ev: string;
          flow?: string;
          state?: string;
          at: number;
          message?: string;
        };
        if (e.ev === 'ready') {
          clearTimeout(timer);
          resolve();
        } else if (e.ev === 'fatal') reject(new Error(`conntrack watcher: ${e.message}`));
        else observer.onConntrack(e.ev, e.flow!, e.state!, e.at);
      });
    });
    await ready;
    if (observer.capture) {
      const dump = lb.lb.spawn('tcpdump', ['-n', '-l', '-tt', '-i', 'any', 'tcp']);
      observer.children.push(dump);
      let started!: () => void;
      const listening = new Promise<void>((resolve) => {
        started = resolve;
      });
      dump.stderr!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('listening on')) started();
      });
      createInterface({ input: dump.stdout! }).on('line', (line) => {
        const packet = parseTcpdumpLine(line);
        if (packet) observer.onPacket(packet);
      });
      await Promise.race([listening, new Promise((r) => setTimeout(r, 3_000))]);
    }
    return observer;
  }

  private onConntrack(ev: string, flow: string, state: string, at: number): void {
    const clientPort = Number(/^[^:]+:(\d+)>/.exec(flow)?.[1]);
    if (ev === 'ct-new')
      this.events.push({
        at,
        host: 'lb',
        kind: 'lb-track',
        what: `LB tracks session :${clientPort} (${state})`,
      });
    else if (ev === 'ct-state') {
      this.events.push({
        at,
        host: 'lb',
        kind: 'lb-state',
        what: `LB session :${clientPort} is now ${state}`,
      });
    } else {
      this.events.push({
        at,
        host: 'lb',
        kind: state === 'ESTABLISHED' ? 'lb-expired' : 'lb-closed',
        what:
          state === 'ESTABLISHED'
            ? `LB forgets idle session :${clientPort} (idle timeout expired)`
            : `LB drops closed session :${clientPort} (${state})`,
      });
    }
  }

  /**
   * Under an L7 LB each leg is its own TCP connection ending in the lb's
   * kernel: a keepalive probe arriving on one leg is answered there and
   * nothing goes out on the other (the capture shows both legs), while data
   * is read by the proxy and written again on the other leg.
   */
  private onL7Packet(p: Packet): void {
    const a = LB_ADDRESSES;
    const clientLeg = p.iface === 'toclient';
    if (!clientLeg && p.iface !== 'tobackend') return;
    const isIn = p.dir === 'In';
    // The far end's port names the flow: the client's on its leg, the LB's own on the backend leg.
    const port = clientLeg ? (isIn ? p.sport : p.dport) : isIn ? p.dport : p.sport;
    const key = `${p.iface}:${port}`;
    const silence = p.at - (this.lastOnLeg.get(key) ?? p.at);
    this.lastOnLeg.set(key, p.at);
    const rst = p.flags.includes('R');
    const fin = p.flags.includes('F');
    const bareAck = p.flags === '.' && p.length === 0;
    const peer: TimelineEvent['host'] = clientLeg ? this.clientSide : 'backend';
    if (isIn && (p.src === a.client || p.src === a.backend)) {
      if (p.flags.includes('S') && clientLeg)
        this.push(p, peer, 'connect', `${peer} opens :${port} → VIP (L7 LB)`);
      else if (rst) this.push(p, peer, clientLeg ? 'client-rst' : 'backend-rst', `${peer} sends RST`);
      else if (fin) this.push(p, peer, 'fin', `${peer} closes its connection to the L7 LB (FIN)`);
      else if (bareAck && silence >= PROBE_SILENCE_MS)
        this.push(
          p,
          peer,
          'probe',
          `keepalive probe from ${peer} after ${(silence / 1000).toFixed(1)}s idle: answered by the L7 LB's kernel, not forwarded`,
        );
      else if (p.length > 0) this.push(p, peer, 'data', `${peer} sends ${p.length} bytes to the L7 LB`);
    } else if (!isIn) {
      const to = clientLeg ? this.clientSide : 'backend';
      if (rst) this.push(p, 'lb', 'lb-rst', `L7 LB resets its connection to ${to}`);
      else if (fin) this.push(p, 'lb', 'lb-close', `L7 LB closes its connection to ${to} (FIN)`);
      else if (p.length > 0) this.push(p, 'lb', 'lb-data', `L7 LB sends ${p.length} bytes to ${to}`);
    }
  }

  private onPacket(p: Packet): void {
    if (this.l7) {
      this.onL7Packet(p);
      return;
    }
    const a = LB_ADDRESSES;
    const fromClient = p.src === a.client;
    const clientPort = fromClient ? p.sport : p.dport;
    const silence = p.at - (this.lastPacket.get(clientPort) ?? p.at);
    const isIn = p.dir === 'In';
    if (isIn) this.lastPacket.set(clientPort, p.at);
    const rst = p.flags.includes('R');
    const bareAck = p.flags === '.' && p.length === 0;

    if (isIn && p.iface === 'toclient' && fromClient) {
      this.lastData.delete(`backend:${clientPort}`);
      if (p.flags.includes('S'))
        this.push(p, this.clientSide, 'connect', `${this.clientSide} opens :${clientPort} → VIP`);
      else if (rst) {
        this.push(
          p,
          this.clientSide,
          'client-rst',
          p.at - this.lastUntranslated < 50
            ? `${this.clientSide}'s kernel refuses the untranslated packet with RST (no such connection)`
            : `${this.clientSide} sends RST on :${clientPort}`,
        );
      } else if (bareAck && silence >= PROBE_SILENCE_MS) {
        this.push(
          p,
          this.clientSide,
          'probe',
          `keepalive probe from ${this.clientSide} after ${(silence / 1000).toFixed(1)}s idle`,
        );
      } else if (p.length > 0) this.dataOrRetransmit(p, this.clientSide, clientPort);
    } else if (isIn && p.iface === 'tobackend' && p.src === a.backend) {
      this.lastData.delete(`${this.clientSide}:${clientPort}`);
      if (rst) {
        this.lastBackendRst = p.at;
        this.push(p, 'backend', 'backend-rst', `backend sends RST on :${clientPort}`);
      } else if (bareAck && silence >= PROBE_SILENCE_MS) {
        this.push(
          p,
          'backend',
          'probe',
          `keepalive probe from backend after ${(silence / 1000).toFixed(1)}s idle`,
        );
      } else if (p.length > 0) this.dataOrRetransmit(p, 'backend', clientPort);
    } else if (!isIn && p.iface === 'toclient') {
      if (p.src === a.backend) {
        this.lastUntranslated = p.at;
        this.push(
          p,
          'lb',
          'untranslated',
          `LB forwards a backend packet of forgotten session :${clientPort} untranslated`,
        );
      } else if (p.src === a.vip && rst && p.at - this.lastBackendRst > 5) {
        this.push(p, 'lb', 'lb-rst', `LB answers a packet of forgotten session :${clientPort} with RST`);
      }
    }
  }

  /** The same segment again with nothing heard from the other side is a retransmission. */
  private dataOrRetransmit(p: Packet, side: TimelineEvent['host'], clientPort: number): void {
    const key = `${side}:${clientPort}`;
    if (this.lastData.get(key) === p.length) {
      this.push(p, side, 'retransmit', `${side} retransmits ${p.length} bytes (no ACK came back)`);
    } else this.push(p, side, 'data', `${side} sends ${p.length} bytes`);
    this.lastData.set(key, p.length);
  }

  private push(p: Packet, host: TimelineEvent['host'], kind: string, what: string): void {
    this.events.push({ at: p.at, host, kind, what });
  }

  stop(): void {
    for (const child of this.children) child.kill('SIGKILL');
  }
}
