/**
 * The one timer idiom of the proxy: a deadline that the data path moves by
 * storing a number, kept in a list of deadlines armed for the same period,
 * with one Node timer per list instead of one per deadline.
 *
 * Why lists: a Node `Timeout` is an object of its own (about 150 B with its
 * arguments), and an idle keep-alive connection holds its timer for as long
 * as it is idle, so thousands of idle connections held thousands of them
 * (memory per idle connection, docs/performance.md). Deadlines armed for the
 * same period fall in the order they were armed, so a list per period stays
 * sorted by appending (nginx keeps one rbtree of timers; Node keeps one list
 * per duration too, but each entry is a full `Timeout`). A deadline is a node
 * of its list (intrusive): arming, moving and cancelling are O(1) and
 * allocate nothing.
 *
 * Cheap moves: re-arming within the same clock tick stores nothing; a
 * deadline already last in its list only moves `at` (the list stays
 * sorted). The list's Node timer is re-armed lazily: it is set for the
 * first deadline when the list gets one, and when it fires it expires
 * every deadline really passed (in order) and sleeps again until the new
 * first one; a deadline moved later meanwhile is simply no longer first. So
 * `onExpire` runs only for a deadline really passed, once, never early.
 */

import { now } from './clock.js';

// biome-ignore lint/suspicious/noExplicitAny: any owner type
type AnyDeadline = Deadline<any>;

/** Every list of one clock and one kind (background or not). */
class TimerGroup {
  readonly lists = new Map<number, TimerList>();
  constructor(
    readonly clock: () => number,
    /** Its timers do not keep the process alive. */
    readonly background: boolean,
  ) {}

  /** The list `listFor` found last: a request arms its deadlines for the same few periods, found without a Map lookup each. */
  private last: TimerList | undefined = undefined;

  listFor(ms: number): TimerList {
    const last = this.last;
    if (last !== undefined && last.ms === ms) return last;
    let list = this.lists.get(ms);
    if (list === undefined) {
      list = new TimerList(ms, this);
      this.lists.set(ms, list);
    }
    this.last = list;
    return list;
  }

  /** A list emptied for good leaves the group (and `last`). */
  drop(list: TimerList): void {
    if (this.lists.get(list.ms) === list) this.lists.delete(list.ms);
    if (this.last === list) this.last = undefined;
  }
}

function fireList(list: TimerList): void {
  list.fire();
}

/** Deadlines armed for `ms`, soonest first (each one was armed `ms` before it falls). */
class TimerList {
  head: AnyDeadline | undefined = undefined;
  tail: AnyDeadline | undefined = undefined;
  private size = 0;
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly ms: number,
    private readonly group: TimerGroup,
  ) {}

  append(d: AnyDeadline): void {
    const tail = this.tail;
    d.list = this;
    d.prev = tail;
    d.next = undefined;
    if (tail === undefined) this.head = d;
    else tail.next = d;
    this.tail = d;
    // A timer still set (for a deadline since moved or cancelled) falls no
    // later than this one: it wakes up early and sleeps again.
    const timer = this.timer;
    if (timer === undefined) this.schedule(this.ms);
    else if (this.size === 0 && !this.group.background) timer.ref();
    this.size++;
  }

  unlink(d: AnyDeadline): void {
    const prev = d.prev;
    const next = d.next;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next === undefined) this.tail = prev;
    else next.prev = prev;
    d.prev = undefined;
    d.next = undefined;
    d.list = undefined;
    // Emptied, the list keeps its timer (re-armed soon under load) but no
    // longer holds the process: a cancelled deadline never did.
    if (--this.size === 0 && this.timer !== undefined && !this.group.background) this.timer.unref();
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(fireList, Math.max(ms, 1), this);
    if (this.group.background) this.timer.unref();
  }

  /** @internal the list's timer */
  fire(): void {
    this.timer = undefined;
    const group = this.group;
    const now = group.clock();
    // Bounded by the deadlines there now: one re-armed from its onExpire
    // for 0 ms waits for the next turn instead of looping here.
    let n = this.size;
    try {
      while (n-- > 0) {
        const d = this.head;
        if (d === undefined || d.at > now) break;
        this.unlink(d);
        d.expire();
      }
    } finally {
      const head = this.head;
      if (head !== undefined) {
        if (this.timer === undefined) this.schedule(head.at - group.clock());
      } else if (this.timer === undefined) group.drop(this);
    }
  }
}

const defaultGroups = [new TimerGroup(now, false), new TimerGroup(now, true)] as const;
const clockGroups = new WeakMap<() => number, [TimerGroup, TimerGroup]>();

function groupFor(clock: () => number, background: boolean): TimerGroup {
  if (clock === now) return defaultGroups[background ? 1 : 0];
  let pair = clockGroups.get(clock);
  if (pair === undefined) {
    pair = [new TimerGroup(clock, false), new TimerGroup(clock, true)];
    clockGroups.set(clock, pair);
  }
  return pair[background ? 1 : 0];
}

export class Deadline<T = unknown> {
  /** When the deadline falls, in the clock's ms; 0: not armed. */
  at = 0;
  /** @internal neighbours in `list` */
  prev: AnyDeadline | undefined = undefined;
  /** @internal */
  next: AnyDeadline | undefined = undefined;
  /** @internal the list of the period it was last armed for; undefined when not armed */
  list: TimerList | undefined = undefined;
  private readonly group: TimerGroup;

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
    background = false,
    clock: () => number = now,
  ) {
    this.group = groupFor(clock, background);
  }

  /** The deadline is `ms` from now, sooner or later than before. */
  arm(ms: number): void {
    const at = this.group.clock() + ms;
    const list = this.list;
    if (list !== undefined) {
      // Re-armed in the same tick (per chunk of a busy connection): nothing moves.
      if (at === this.at) return;
      if (list.ms === ms && list.tail === this) {
        this.at = at;
        return;
      }
      list.unlink(this);
    }
    this.at = at;
    this.group.listFor(ms).append(this);
  }

  /** When `arm` (or `touch`) was last called, in the clock's ms (a time callers may reuse instead of reading the clock again); 0 when not armed. */
  get armedAt(): number {
    const list = this.list;
    return list === undefined ? 0 : this.at - list.ms;
  }

  /** Activity: the deadline is `periodMs` from now (the data path's call); no-op for a period of 0 (no timeout). */
  touch(): void {
    if (this.periodMs > 0) this.arm(this.periodMs);
  }

  /** No deadline any more. */
  cancel(): void {
    this.at = 0;
    const list = this.list;
    if (list !== undefined) list.unlink(this);
  }

  get armed(): boolean {
    return this.at !== 0;
  }

  /** ms until the deadline (negative once passed); undefined when not armed. */
  get left(): number | undefined {
    return this.at === 0 ? undefined : this.at - this.group.clock();
  }

  /** @internal its list found it passed (and took it out) */
  expire(): void {
    this.at = 0;
    this.onExpire.call(this.target);
  }
}
