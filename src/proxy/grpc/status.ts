/**
 * gRPC statuses keepwire gives a client itself, and where in a response
 * stream a status may still be given.
 *
 * The mapping is Envoy's (source/common/grpc/status.cc httpToGrpcStatus:
 * 502/503/504 → UNAVAILABLE, which is also gRPC's own
 * doc/http-grpc-status-mapping.md), with Envoy's router since
 * envoyproxy/envoy#44479: a timeout keepwire enforces is DEADLINE_EXCEEDED,
 * not the lossy 504 → UNAVAILABLE (a client must not retry a call whose
 * time is spent as if the server were down). So:
 *   no live server, connect failure or timeout, the upstream closed or reset
 *   before the response header        → 14 UNAVAILABLE
 *   grpc_read_timeout                  → 4 DEADLINE_EXCEEDED
 *   a request stream over client_max_body_size → 8 RESOURCE_EXHAUSTED
 *                                        (nginx answers 413; gRPC's own limit on
 *                                        message size is this status)
 * Statuses go in a trailers-only response (HTTP 200, one HEADERS frame with
 * END_STREAM: gRPC's PROTOCOL-HTTP2.md "Trailers-Only").
 */

export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** grpc-message is percent-encoded (PROTOCOL-HTTP2.md: space to ~ except %, others as %XX of UTF-8). */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The header fields of a trailers-only response with `status`. */
export function trailersOnly(status: number, message: string): string[] {
  return [
    'content-type',
    'application/grpc',
    'grpc-status',
    String(status),
    'grpc-message',
    grpcMessage(message),
  ];
}

/**
 * Follows the length-prefixed messages of a gRPC stream as its DATA passes
 * (1 byte flag, 4 bytes big-endian length, payload; PROTOCOL-HTTP2.md
 * "Length-Prefixed-Message"), payloads skipped by count: tells whether the
 * bytes so far end on a message boundary, where trailers may still end the
 * stream without the client taking a cut message for a whole one.
 */
export class MessageBoundary {
  /** Bytes of the current message's prefix seen (0–5). */
  private prefix = 0;
  private length = 0;
  /** Payload bytes still to come for the current message. */
  private left = 0;

  get atBoundary(): boolean {
    return this.prefix === 0 && this.left === 0;
  }

  feed(chunk: Buffer): void {
    let at = 0;
    const n = chunk.length;
    while (at < n) {
      if (this.left > 0) {
        const take = Math.min(this.left, n - at);
        this.left -= take;
        at += take;
        continue;
      }
      // Prefix bytes: the flag, then the length.
      const byte = chunk[at++]!;
      if (this.prefix > 0) this.length = this.length * 256 + byte;
      this.prefix++;
      if (this.prefix === 5) {
        this.prefix = 0;
        this.left = this.length;
        this.length = 0;
      }
    }
  }
}
