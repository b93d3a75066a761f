/**
 * Drives a socket agent (agent-main.ts) running inside a namespace: send it
 * commands, wait for its events.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { KeepaliveOptions, KeepaliveState } from '../keepalive/socket.js';
import type { Host } from './topology.js';

export interface AgentEvent {
  ev: string;
  t: number;
  /** Wall-clock ms, comparable across processes on this machine. */
  at: number;
  id?: string;
  code?: string;
  data?: string;
  state?: KeepaliveState;
  port?: number;
  [key: string]: unknown;
}

const AGENT_MAIN = fileURLToPath(new URL('./agent-main.js', import.meta.url));

export class SocketAgent {
  readonly events: AgentEvent[] = [];
  private waiters: { match: (e: AgentEvent) => boolean; resolve: (e: AgentEvent) => void }[] = [];
  private readonly listeners: ((e: AgentEvent) => void)[] = [];
  private readonly child: ChildProcess;
  private exited = false;

  private constructor(
    readonly host: Host,
    child: ChildProcess,
  ) {
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: AgentEvent;
      try {
        event = JSON.parse(line) as AgentEvent;
      } catch {
        return;
      }
      this.events.push(event);
      for (const listener of this.listeners) listener(event);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(event)) return true;
        w.resolve(event);
        return false;
      });
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('exit', (code, signal) => {
      this.exited = true;
      const event: AgentEvent = { ev: 'exit', t: -1, at: Date.now(), code: String(code ?? signal), stderr };
      this.events.push(event);
      for (const w of this.waiters) if (w.match(event)) w.resolve(event);
    });
  }

  /** Starts an agent in `host` with the same Node binary as this process. */
  static async start(host: Host): Promise<SocketAgent> {
    const agent = new SocketAgent(host, host.spawn(process.execPath, [AGENT_MAIN]));
    const ready = await agent.waitFor((e) => e.ev === 'ready' || e.ev === 'exit', 10_000);
    if (ready.ev !== 'ready')
      throw new Error(`socket agent in ${host.name} did not start: ${String(ready.stderr)}`);
    return agent;
  }

  /** Calls `listener` for every event so far and every later one. */
  onEvent(listener: (e: AgentEvent) => void): void {
    for (const e of this.events) listener(e);
    this.listeners.push(listener);
  }

  send(command: Record<string, unknown>): void {
    if (this.exited) throw new Error(`socket agent in ${this.host.name} has exited`);
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  /** Resolves with the first event (already seen or future) that matches; rejects after timeoutMs. */
  waitFor(match: (e: AgentEvent) => boolean, timeoutMs: number): Promise<AgentEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `${this.host.name}: no matching event within ${timeoutMs} ms; saw ${JSON.stringify(this.events.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      const done = (e: AgentEvent) => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.push({ match, resolve: done });
    });
  }

  /** Resolves with the matching event, or undefined if none came within timeoutMs. */
  async maybe(match: (e: AgentEvent) => boolean, timeoutMs: number): Promise<AgentEvent | undefined> {
    try {
      return await this.waitFor(match, timeoutMs);
    } catch {
      return undefined;
    }
  }

  async listen(opts: {
    host: string;
    port: number;
    keepalive?: KeepaliveOptions;
    echo?: boolean;
    delayMs?: number;
    reply?: string;
  }): Promise<number> {
    this.send({ op: 'listen', ...opts });
    const e = await this.waitFor((x) => x.ev === 'listening' || x.ev === 'fatal', 10_000);
    if (e.ev !== 'listening') throw new Error(`${this.host.name}: listen failed: ${String(e.message)}`);
    return e.port!;
  }

  async connect(
    id: string,
    opts: { host: string; port: number; keepalive?: KeepaliveOptions; keepaliveAfterConnect?: boolean },
  ): Promise<AgentEvent> {
    this.send({ op: 'connect', id, ...opts });
    const e = await this.waitFor((x) => x.id === id && (x.ev === 'connected' || x.ev === 'error'), 10_000);
    if (e.ev !== 'connected') throw new Error(`${this.host.name}: connect ${id} failed: ${e.code}`);
    return e;
  }

  async readKeepalive(id: string): Promise<KeepaliveState> {
    const before = this.events.length;
    this.send({ op: 'read-keepalive', id });
    const e = await this.waitFor(
      (x) => x.ev === 'keepalive' && x.id === id && this.events.indexOf(x) >= before,
      5_000,
    );
    return e.state!;
  }

  /** The agent's current clock (ms since it started), from a round trip. */
  async now(): Promise<number> {
    const id = `ping${this.events.length}`;
    this.send({ op: 'ping', id });
    return (await this.waitFor((x) => x.ev === 'pong' && x.id === id, 5_000)).t;
  }

  stop(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
