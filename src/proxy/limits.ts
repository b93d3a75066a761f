/**
 * The global cap on concurrent client connections (nginx's
 * worker_connections, HAProxy's maxconn). Over the cap a new connection is
 * refused at once rather than queued, so a flood cannot grow memory without
 * bound. Survives reloads: sessions accepted under the old configuration
 * still count against the new limit.
 */
export class ConnectionLimiter {
  active = 0;

  /** `limit <= 0` means no cap. */
  constructor(public limit: number) {}

  tryAcquire(): boolean {
    if (this.limit > 0 && this.active >= this.limit) return false;
    this.active++;
    return true;
  }

  release(): void {
    if (this.active > 0) this.active--;
  }
}
