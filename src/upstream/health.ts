/**
 * Passive health, as nginx's `max_fails` / `fail_timeout`: `maxFails`
 * failures within `failTimeoutMs` take the server out for `failTimeoutMs`;
 * afterwards it is tried again with a clean record. A success clears the
 * count, so sporadic failures spread over time never eject a server.
 * `maxFails = 0` turns the accounting off (nginx: "disables the accounting").
 */
export class PassiveHealth {
  private fails = 0;
  private windowStartMs = 0;
  private downUntilMs = 0;

  constructor(
    readonly maxFails: number,
    readonly failTimeoutMs: number,
  ) {}

  available(nowMs: number): boolean {
    if (this.downUntilMs === 0) return true;
    if (nowMs < this.downUntilMs) return false;
    // Back in rotation after fail_timeout: a fresh window, like nginx's
    // "checked" time moving on after the server is tried again.
    this.downUntilMs = 0;
    this.fails = 0;
    return true;
  }

  /** Records a failed attempt (refused, reset or timed out while connecting). Returns true if this ejected the server. */
  failure(nowMs: number): boolean {
    if (this.maxFails === 0) return false;
    if (this.fails === 0 || nowMs - this.windowStartMs > this.failTimeoutMs) {
      this.fails = 0;
      this.windowStartMs = nowMs;
    }
    this.fails++;
    if (this.fails >= this.maxFails && this.downUntilMs === 0) {
      this.downUntilMs = nowMs + this.failTimeoutMs;
      return true;
    }
    return false;
  }

  success(): void {
    if (this.downUntilMs === 0) this.fails = 0;
  }

  /** For logs and tests. */
  get failures(): number {
    return this.fails;
  }
}
