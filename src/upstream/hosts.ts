/**
 * Per-server runtime state of an upstream group: in-flight connections and
 * the passive health record. Shared by the stream and HTTP proxies, so it
 * knows nothing about what the connections carry.
 */
import type { Address, UpstreamServer } from '../config/model.js';
import { PassiveHealth } from './health.js';

export class UpstreamHost {
  readonly server: UpstreamServer;
  readonly health: PassiveHealth;
  /** Connections currently open to this server (counted from connect start to close). */
  activeConns = 0;

  /**
   * `single`: the only server of its group, with no backup. nginx never
   * counts failures against such a peer (`peers->single` in
   * ngx_http_upstream_round_robin.c: it is always tried unless `down` or at
   * max_conns, and its fails are cleared on every free), since taking it
   * out would leave nothing to send to: a restarted application must be
   * reachable again on the next request, not after fail_timeout.
   */
  constructor(server: UpstreamServer, single = false) {
    this.server = server;
    this.health = new PassiveHealth(single ? 0 : server.maxFails, server.failTimeoutMs);
  }

  get address(): Address {
    return this.server.address;
  }

  get weight(): number {
    return this.server.weight;
  }

  get backup(): boolean {
    return this.server.backup;
  }

  /** max_conns reached: nginx skips such a server as if it were unavailable. */
  full(): boolean {
    return this.server.maxConns > 0 && this.activeConns >= this.server.maxConns;
  }

  /** Can take a new connection now: not `down`, not ejected by passive health, under max_conns. */
  usable(nowMs: number): boolean {
    return !this.server.down && !this.full() && this.health.available(nowMs);
  }

  acquire(): void {
    this.activeConns++;
  }

  release(): void {
    if (this.activeConns > 0) this.activeConns--;
  }
}
