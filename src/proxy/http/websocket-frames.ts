/**
 * RFC 6455 frame boundaries in one direction of a WebSocket tunnel, tracked
 * over the chunks as they pass: only the 2-14 header bytes of each frame are
 * looked at (kept across chunk edges in a 14-byte scratch); payloads are
 * skipped by count, never copied or buffered. The tunnel asks `atBoundary`
 * before it inserts a control frame, so an inserted frame can never land
 * inside another frame (RFC 6455 §5.4: control frames may be injected
 * between the fragments of a message, never inside a frame).
 *
 * RSV bits are not checked: an extension (permessage-deflate sets RSV1,
 * RFC 7692 §6) owns them, and keepwire passes them through untouched.
 */

import { randomFillSync } from 'node:crypto';

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PONG = 0xa;

export class FrameTracker {
  /** Header bytes of the current frame read so far (0 between frames). */
  private have = 0;
  /** Header length of the current frame, known once its first two bytes are in. */
  private need = 2;
  /** Payload bytes of the current frame still to pass. */
  private remaining = 0;
  private readonly header = Buffer.alloc(14);
  /** Inside a fragmented data message (a text/binary frame without FIN seen, its final continuation not yet). */
  private fragmented = false;
  /** Why the stream is not a WebSocket stream; set once, then `feed` does nothing. */
  invalid: string | undefined;
  /** A Close frame passed (RFC 6455 §5.5.1: nothing may follow it from this side). */
  closed = false;
  frames = 0;

  /** `masked`: frames in this direction must carry a mask (client to server, §5.1), or must not. */
  constructor(private readonly masked: boolean) {}

  /** No frame is partly through: a whole frame may be written next. */
  get atBoundary(): boolean {
    return this.have === 0 && this.remaining === 0 && this.invalid === undefined;
  }

  /** Follows the frames in `chunk`; false once the stream is found invalid. */
  feed(chunk: Buffer): boolean {
    if (this.invalid !== undefined) return false;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, n - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      this.header[this.have++] = chunk[i++]!;
      if (this.have === 2 && !this.firstTwo()) return false;
      if (this.have === this.need && !this.complete()) return false;
    }
    return true;
  }

  private fail(why: string): false {
    this.invalid = why;
    return false;
  }

  /** The first two bytes give the opcode, FIN, mask bit and the length form (§5.2). */
  private firstTwo(): boolean {
    const b0 = this.header[0]!;
    const b1 = this.header[1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const len7 = b1 & 0x7f;
    if (((b1 & 0x80) !== 0) !== this.masked) {
      return this.fail(
        this.masked
          ? 'unmasked frame from the client (RFC 6455 §5.1)'
          : 'masked frame from the server (RFC 6455 §5.1)',
      );
    }
    if (opcode >= 0x8) {
      if (opcode > OP_PONG) return this.fail(`reserved opcode 0x${opcode.toString(16)}`);
      // §5.5: control frames are never fragmented and carry at most 125 bytes.
      if (!fin) return this.fail('fragmented control frame');
      if (len7 > 125) return this.fail('control frame longer than 125 bytes');
      if (opcode === OP_CLOSE) this.closed = true;
    } else if (opcode === OP_CONTINUATION) {
      if (!this.fragmented) return this.fail('continuation frame outside a fragmented message');
      if (fin) this.fragmented = false;
    } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.fragmented) return this.fail('new data frame inside a fragmented message');
      if (!fin) this.fragmented = true;
    } else {
      return this.fail(`reserved opcode 0x${opcode.toString(16)}`);
    }
    this.need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.masked ? 4 : 0);
    return true;
  }

  /** The whole header is in: the payload length, then the frame's bytes are skipped. */
  private complete(): boolean {
    const h = this.header;
    const len7 = h[1]! & 0x7f;
    let length = len7;
    if (len7 === 126) length = h.readUInt16BE(2);
    else if (len7 === 127) {
      const high = h.readUInt32BE(2);
      // §5.2: the most significant bit must be 0; beyond 2^53 a count is not exact.
      if (high > 0x1fffff) return this.fail('64-bit payload length out of range');
      length = high * 0x100000000 + h.readUInt32BE(6);
    }
    this.remaining = length;
    this.have = 0;
    this.need = 2;
    this.frames++;
    return true;
  }
}

const CLIENT_PONG = Buffer.from([0x80 | OP_PONG, 0x00]);

/**
 * An empty unsolicited Pong (§5.5.3). Toward the server it is masked with a
 * fresh random key, as every client frame must be (§5.3); an empty payload
 * leaves nothing to XOR, but the key is still sent.
 */
export function pongFrame(towardServer: boolean): Buffer {
  if (!towardServer) return CLIENT_PONG;
  const frame = Buffer.allocUnsafe(6);
  frame[0] = 0x80 | OP_PONG;
  frame[1] = 0x80;
  randomFillSync(frame, 2, 4);
  return frame;
}

/** The 101 head switched to the WebSocket protocol (`Upgrade: websocket`, RFC 6455 §4.2.2). */
export function isWebSocketSwitch(head: string): boolean {
  return /\r\nupgrade:[ \t]*websocket[ \t]*\r\n/i.test(head);
}
