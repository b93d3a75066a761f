/**
 * The pages keepwire answers itself in a location with `metrics;`,
 * `stub_status;` or `status;`. Each asks `gather(topic)` for one answer per
 * serving process (src/serve/gather.ts) and merges them, so the numbers are
 * the whole server's under worker processes too. This module registers this
 * process's collectors when loaded (the proxy loads it; a collector costs
 * nothing until a page asks).
 */
import type { HttpLocation } from '../config/model.js';
import { gather, registerCollector } from '../serve/gather.js';
import { collectMetrics } from './collect.js';
import {
  type Family,
  mergeFamilies,
  OPENMETRICS_TEXT,
  PROMETHEUS_TEXT,
  render,
  sumOf,
  wantsOpenMetrics,
} from './exposition.js';
import { collectStatus, mergeStatus, type StatusSnapshot } from './status.js';
import { STATUS_PAGE } from './status-page.js';

registerCollector('metrics', collectMetrics);
registerCollector('status', () => collectStatus());

export interface PageAnswer {
  status: number;
  contentType: string;
  body: Buffer;
  /** Extra response headers (name, value pairs). */
  headers: string[];
}

/** The whole server's metric families. */
export async function serverMetrics(): Promise<Family[]> {
  return mergeFamilies((await gather('metrics')) as Family[][]);
}

/**
 * nginx's stub_status text, byte for byte (ngx_http_stub_status_module.c:
 * every number followed by a space, "Waiting" = active − reading − writing).
 * Active counts every client connection, stream sessions included, as
 * nginx's ngx_stat_active does; Reading/Writing/Waiting are HTTP's.
 */
export function stubStatusText(families: readonly Family[]): string {
  const accepts = sumOf(families, 'keepwire_connections_accepted');
  const handled = sumOf(families, 'keepwire_connections_handled');
  const requests = sumOf(families, 'keepwire_http_requests');
  const active = sumOf(families, 'keepwire_connections');
  const reading = sumOf(families, 'keepwire_connections', { state: 'reading' });
  const writing = sumOf(families, 'keepwire_connections', { state: 'writing' });
  const waiting = sumOf(families, 'keepwire_connections', { state: 'waiting' });
  return (
    `Active connections: ${active} \n` +
    'server accepts handled requests\n' +
    ` ${accepts} ${handled} ${requests} \n` +
    `Reading: ${reading} Writing: ${writing} Waiting: ${waiting} \n`
  );
}

function queryParam(url: string, name: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  for (const part of url.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (key === name) return eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
  }
  return undefined;
}

function headerValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) return raw[i + 1];
  return undefined;
}

const NO_STORE = ['Cache-Control', 'no-store'];

/** The answer of a page location to one request. */
export async function answerPage(
  location: HttpLocation,
  url: string,
  rawHeaders: readonly string[],
): Promise<PageAnswer> {
  switch (location.page) {
    case 'metrics': {
      const open = wantsOpenMetrics(headerValue(rawHeaders, 'accept'));
      return {
        status: 200,
        contentType: open ? OPENMETRICS_TEXT : PROMETHEUS_TEXT,
        body: Buffer.from(render(await serverMetrics(), open)),
        headers: NO_STORE,
      };
    }
    case 'stub_status':
      return {
        status: 200,
        contentType: 'text/plain',
        body: Buffer.from(stubStatusText(await serverMetrics())),
        headers: NO_STORE,
      };
    case 'status': {
      if (queryParam(url, 'format') === 'json') {
        const snapshot = mergeStatus(
          (await gather('status')) as StatusSnapshot[],
          location.statusConnections,
        );
        return {
          status: 200,
          contentType: 'application/json',
          body: Buffer.from(JSON.stringify(snapshot)),
          headers: NO_STORE,
        };
      }
      return {
        status: 200,
        contentType: 'text/html; charset=utf-8',
        body: Buffer.from(STATUS_PAGE),
        headers: NO_STORE,
      };
    }
    default:
      return { status: 404, contentType: 'text/plain', body: Buffer.from('404 Not Found\n'), headers: [] };
  }
}
