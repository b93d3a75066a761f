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

/**
 * Orders events and makes times relative to the first thing the client does,
 * so every timeline starts at 0.0s where the story starts; set-up steps
 * (kind `config`) come first, untimed (t is null in JSON).
 */
export function relativeTimeline(events: TimelineEvent[]): RenderedEvent[] {
  const story = events.filter((e) => e.kind !== 'config');
  const fromClient = story.filter((e) => e.host === 'client').map((e) => e.at);
  const zero = Math.min(...(fromClient.length ? fromClient : story.map((e) => e.at)));
  const rel = (e: TimelineEvent): RenderedEvent => ({
    t: Math.round((e.at - zero) / 100) / 10,
    host: e.host,
    kind: e.kind,
    what: e.what,
  });
  return [
    ...events.filter((e) => e.kind === 'config').map((e) => ({ ...rel(e), t: Number.NaN })),
    ...story.sort((a, b) => a.at - b.at).map(rel),
  ];
}

export function renderTimeline(events: RenderedEvent[], indent = '    '): string {
  return events
    .map((e) => {
      const t = Number.isNaN(e.t) ? 'setup' : `${e.t.toFixed(1)}s`;
      return `${indent}${t.padStart(6)}  ${e.host.padEnd(7)}  ${e.what}`;
    })
    .join('\n');
}
