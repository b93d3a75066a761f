/**
 * The one idle-timer idiom of the proxy: a deadline that the data path moves
 * by storing a number, and one Node timer that is re-armed lazily.
 *
 * Resetting a timer per chunk or per request costs more than the rest of a
 * small exchange, so `touch`/`arm` only move `at`; the timer is replaced only
 * when it would fire too late (the deadline moved earlier). When it fires
 * early (the deadline moved later), it sleeps again for the time left, and
 * only a deadline really passed calls `onExpire`. One timer object per owner,
 * no closure per touch: the timer calls a module function with the Deadline.
 */

import { now } from './clock.js';

// biome-ignore lint/suspicious/noExplicitAny: any owner type
function fire(deadline: Deadline<any>): void {
  deadline.fired();
}

export class Deadline<T = unknown> {
  /** When the deadline falls, in the clock's ms; 0: not armed. */
  private at = 0;
  /** When `arm` (or `touch`) was last called, in the clock's ms: a time callers may reuse instead of reading the clock again. */
  armedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires. */
  private timerAt = 0;

  /**
   * @param target the owner, `this` of `onExpire` (a method of the owner: no closure per owner)
   * @param onExpire called once the deadline has passed (not again until re-armed)
   * @param periodMs what `touch` arms for (e.g. proxy_timeout)
   * @param background the timer does not keep the process alive (idle pool entries)
   * @param clock injectable for sessions that take their own clock
   */
  constructor(
    private readonly target: T,
    private readonly onExpire: (this: T) => void,
    private readonly periodMs = 0,
    private readonly background = false,
    private readonly clock: () => number = now,
  ) {}

  /** The deadline is `ms` from now, sooner or later than before. */
  arm(ms: number): void {
    const now = this.clock();
    this.armedAt = now;
    const at = now + ms;
    this.at = at;
    if (this.timer === undefined || at < this.timerAt) this.schedule(ms, at);
  }

  /** Activity: the deadline is `periodMs` from now (the data path's call); no-op for a period of 0 (no timeout). */
  touch(): void {
    if (this.periodMs > 0) this.arm(this.periodMs);
  }

  /**
   * No deadline for now, but the timer stays (it fires once, finds nothing
   * armed and is dropped): for an owner that is armed again soon, as a pooled
   * connection by its next request, this saves clearing and making a Node
   * timer per use. A ref'd timer left this way keeps the process alive until
   * it fires: owners call `cancel` when they close.
   */
  disarm(): void {
    this.at = 0;
  }

  /** No deadline any more (the timer is cleared). */
  cancel(): void {
    this.at = 0;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  get armed(): boolean {
    return this.at !== 0;
  }

  /** ms until the deadline (negative once passed); undefined when not armed. */
  get left(): number | undefined {
    return this.at === 0 ? undefined : this.at - this.clock();
  }

  private schedule(ms: number, at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(fire, Math.max(ms, 0), this);
    if (this.background) this.timer.unref();
  }

  /** @internal the timer's callback */
  fired(): void {
    this.timer = undefined;
    if (this.at === 0) return;
    const left = this.at - this.clock();
    if (left > 0) {
      this.schedule(left, this.at);
      return;
    }
    this.at = 0;
    this.onExpire.call(this.target);
  }
}
