/** Timeline events of a lab run: what happened, on which host, when. */

export type HostName = 'client' | 'lb' | 'backend' | 'proxy';

export interface TimelineEvent {
  /** Wall-clock milliseconds (comparable across the processes of this machine). */
  at: number;
  host: HostName;
  what: string;
  /** Machine-readable kind, e.g. `probe`, `lb-expired`, `lb-rst`, `response`. */
  kind: string;
}

export interface RenderedEvent {
  /** Seconds since the variant started. */
  t: number;
  host: HostName;
  kind: string;
  what: string;
}

export function relativeTimeline(events: TimelineEvent[], start: number): RenderedEvent[] {
  return [...events]
    .sort((a, b) => a.at - b.at)
    .map((e) => ({ t: Math.round((e.at - start) / 100) / 10, host: e.host, kind: e.kind, what: e.what }));
}

export function renderTimeline(events: RenderedEvent[], indent = '    '): string {
  return events
    .map((e) => `${indent}${`${e.t.toFixed(1)}s`.padStart(6)}  ${e.host.padEnd(7)}  ${e.what}`)
    .join('\n');
}
