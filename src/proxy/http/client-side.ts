/**
 * The client side of one request, as the exchange and the frontend's local
 * answers see it: an HTTP/1.x connection (`connection.ts`) or an HTTP/2
 * stream (`../http2/stream.ts`). Everything protocol-specific (framing,
 * keep-alive, flow control, resets) stays behind it, so one exchange (one
 * attempt loop, `tries.ts`) serves both protocols.
 */
import type { Socket } from 'node:net';
import type { BodyKind, ClientUser } from './connection.js';
import type { ClientLimits } from './limits.js';

export interface ClientSide {
  /** The settings of the server and location the request was routed to (set by the frontend). */
  limits: ClientLimits;
  readonly remoteAddr: string;
  readonly remotePort: number;
  /** `address:port` of the client, for log lines. */
  readonly clientText: string;
  /** The request in flight's handler (an exchange or a local answer). */
  user: ClientUser | undefined;
  /** Status of the response under way, 0 before its head. */
  readonly status: number;
  /** `HTTP/2.0` for HTTP/2 streams; undefined for HTTP/1.x (the access line leaves it out). */
  readonly protocol?: string;
  /** Requests so far on the connection, this one included (HTTP/2: streams opened). */
  readonly requests: number;
  /** When the connection last became idle (no request in flight), ms since the epoch (metrics: idle before reuse). */
  readonly idleSince: number;
  /** The client is gone (socket destroyed, stream closed): an answer computed late is dropped. */
  readonly gone: boolean;
  /** Sends the request body (as it arrives) to `sink`. */
  readBody(sink: ClientUser): void;
  pauseBody(): void;
  resumeBody(): void;
  /** Sends `100 Continue` (asked for with Expect). */
  writeContinue(): void;
  /**
   * Queues the response head; `headers` are name, value pairs or header
   * lines ending in CRLF, or an upstream's head as bytes (the status line
   * and header lines, headers.ts `clientResponseHead`).
   */
  startResponse(
    status: number,
    message: string,
    headers: readonly string[] | string | Buffer,
    kind: BodyKind,
    close: boolean,
  ): void;
  writeBody(chunk: Buffer): void;
  /** Writes what is queued; true when the client wants no more for now. */
  flush(): boolean;
  /** Response bytes wait for the client (send_timeout runs). */
  readonly writeBlocked: boolean;
  endResponse(trailers?: readonly string[]): void;
  /** A whole response of keepwire's own; `close`: the client sends nothing more on it. */
  respond(status: number, message: string, headers: readonly string[], body: Buffer, close: boolean): void;
  /** Cuts the response (it cannot be completed honestly). */
  abort(): void;
  /**
   * HTTP/1.1 only (an HTTP/2 request has no Upgrade, RFC 9113 §8.6): hands
   * the socket to a tunnel after a 101, with the bytes held past the request.
   */
  takeOver?(): { socket: Socket; held: Buffer | undefined; ended: boolean };
}
