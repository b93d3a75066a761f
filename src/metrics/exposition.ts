/**
 * Metric families as plain data (what a serving process answers to
 * `gather('metrics')`, so it crosses a process boundary as JSON), their
 * merge over the processes of a server, and the two text formats:
 * Prometheus text 0.0.4 and OpenMetrics 1.0.0 (chosen by `Accept`, as
 * Prometheus' own client libraries do).
 *
 * Hand-written rather than prom-client: the counters are plain fields the
 * proxy increments on objects it already holds (stats.ts), and the
 * exposition is only built when scraped; prom-client's label lookups per
 * increment would sit on the request path, and its registry is per process
 * where keepwire's pages merge N processes' answers.
 */

export type Labels = Record<string, string>;

export interface Sample {
  labels: Labels;
  value: number;
}

export interface HistogramSample {
  labels: Labels;
  /** Upper bounds, seconds (the +Inf bucket is implicit). */
  bounds: readonly number[];
  /** Per bucket, not cumulative; one more than bounds (the +Inf bucket). */
  counts: readonly number[];
  sum: number;
  count: number;
}

export type Family =
  | {
      /** For counters, the name without `_total`. */
      name: string;
      help: string;
      type: 'counter' | 'gauge' | 'info';
      /** How processes' values combine: sum (default) or max (a server up in any worker is up). */
      merge?: 'sum' | 'max';
      samples: Sample[];
    }
  | { name: string; help: string; type: 'histogram'; samples: HistogramSample[] };

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** One answer per process → one set of families: counters and histograms summed, gauges summed or maxed. */
export function mergeFamilies(answers: readonly (readonly Family[])[]): Family[] {
  const out = new Map<string, Family>();
  const index = new Map<string, Map<string, Sample | HistogramSample>>();
  for (const families of answers) {
    for (const f of families) {
      let merged = out.get(f.name);
      let byLabels = index.get(f.name);
      if (merged === undefined || byLabels === undefined) {
        merged = { ...f, samples: [] } as Family;
        byLabels = new Map();
        out.set(f.name, merged);
        index.set(f.name, byLabels);
      }
      for (const s of f.samples) {
        const key = labelKey(s.labels);
        const have = byLabels.get(key);
        if (have === undefined) {
          const copy =
            'bounds' in s
              ? { ...s, counts: [...s.counts] }
              : ({ labels: s.labels, value: s.value } as Sample);
          byLabels.set(key, copy);
          (merged.samples as (Sample | HistogramSample)[]).push(copy);
        } else if ('bounds' in have && 'bounds' in s) {
          const counts = have.counts as number[];
          for (let i = 0; i < counts.length; i++) counts[i]! += s.counts[i] ?? 0;
          have.sum += s.sum;
          have.count += s.count;
        } else if (!('bounds' in have) && !('bounds' in s)) {
          if (f.type === 'info') have.value = 1;
          else if (f.type !== 'histogram' && f.merge === 'max') have.value = Math.max(have.value, s.value);
          else have.value += s.value;
        }
      }
    }
  }
  return [...out.values()];
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(labels: Labels, extra?: string): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function num(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_TEXT = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** Whether a scraper's Accept asks for OpenMetrics (Prometheus sends it first when it can parse it). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && /application\/openmetrics-text/i.test(accept);
}

/**
 * The exposition of the families. Counters are named `<name>_total`; info
 * metrics are gauges named `<name>_info` with value 1 in the 0.0.4 format
 * and OpenMetrics' `info` type otherwise; OpenMetrics ends with `# EOF`.
 */
export function render(families: readonly Family[], openMetrics: boolean): string {
  let out = '';
  for (const f of families) {
    if (f.samples.length === 0) continue;
    const sampleName =
      f.type === 'counter' ? `${f.name}_total` : f.type === 'info' ? `${f.name}_info` : f.name;
    const familyName = openMetrics ? f.name : sampleName;
    const type = f.type === 'info' && !openMetrics ? 'gauge' : f.type;
    out += `# HELP ${familyName} ${escapeHelp(f.help)}\n# TYPE ${familyName} ${type}\n`;
    if (f.type === 'histogram') {
      for (const s of f.samples) {
        let cumulative = 0;
        for (let i = 0; i <= s.bounds.length; i++) {
          cumulative += s.counts[i] ?? 0;
          const le = i < s.bounds.length ? num(s.bounds[i]!) : '+Inf';
          out += `${f.name}_bucket${labelText(s.labels, `le="${le}"`)} ${cumulative}\n`;
        }
        out += `${f.name}_sum${labelText(s.labels)} ${num(s.sum)}\n`;
        out += `${f.name}_count${labelText(s.labels)} ${s.count}\n`;
      }
      continue;
    }
    for (const s of f.samples) out += `${sampleName}${labelText(s.labels)} ${num(s.value)}\n`;
  }
  if (openMetrics) out += '# EOF\n';
  return out;
}

/** The value of a sample family, summed over the samples matching `where` (tests and stub_status). */
export function sumOf(families: readonly Family[], name: string, where: Labels = {}): number {
  const f = families.find((x) => x.name === name);
  if (f === undefined || f.type === 'histogram') return 0;
  let total = 0;
  for (const s of f.samples) if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  return total;
}
