/**
 * struct tcp_info, decoded in one place (probe judges delivery by it, doctor
 * reads how long a process's socket has been idle). Linux only.
 */
import { KeepaliveUnsupportedError } from './errors.js';
import { getBytesOption, sockoptConstants } from './sockopt.js';

/** The fields of struct tcp_info that keepwire reads. */
export interface TcpInfo {
  /** TCP_ESTABLISHED = 1, TCP_CLOSE_WAIT = 8, ... (include/net/tcp_states.h) */
  state: number;
  /** Unanswered keepalive or zero-window probes (icsk_probes_out). */
  probes: number;
  /** Segments in flight, not yet acknowledged. */
  unacked: number;
  /** Milliseconds since the last data was sent. */
  lastDataSentMs: number;
  /** Milliseconds since the last data arrived. */
  lastDataRecvMs: number;
  /** Milliseconds since the last ACK arrived. */
  lastAckRecvMs: number;
  /** Smoothed round-trip time, microseconds. */
  rttUs: number;
}

/** Bytes of struct tcp_info up to tcpi_rcv_space; every field read here exists since Linux 2.6. */
const TCP_INFO_BYTES = 104;
const buf = new Uint8Array(TCP_INFO_BYTES);
const view = new DataView(buf.buffer);

export function readTcpInfo(fd: number): TcpInfo {
  const c = sockoptConstants();
  if (c.TCP_INFO === undefined) {
    throw new KeepaliveUnsupportedError(
      `keepwire: TCP_INFO needs Linux; ${process.platform} is not supported`,
    );
  }
  buf.fill(0);
  getBytesOption(fd, c.IPPROTO_TCP, c.TCP_INFO, buf, 'TCP_INFO');
  // Offsets of struct tcp_info (include/uapi/linux/tcp.h).
  return {
    state: buf[0]!,
    probes: buf[3]!,
    unacked: view.getUint32(24, true),
    lastDataSentMs: view.getUint32(44, true),
    lastDataRecvMs: view.getUint32(52, true),
    lastAckRecvMs: view.getUint32(56, true),
    rttUs: view.getUint32(68, true),
  };
}
