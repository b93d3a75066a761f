/**
 * Live TCP sockets. Host-wide, from the kernel's socket tables through `ss`
 * (keepalive timer state and idle time of every established socket in this
 * network namespace). For one process, the exact TCP_KEEPIDLE/INTVL/CNT and
 * TCP_USER_TIMEOUT, read by duplicating its descriptors into this process
 * (pidfd_open + pidfd_getfd, Linux 5.6+) and calling getsockopt on the copy:
 * the copy shares the socket, so the values are the ones the kernel uses.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { promisify } from 'node:util';
import { probePeriod, recommend, sysctlLines, sysctlSettings } from '../keepalive/recommend.js';
import { readKeepaliveFd } from '../keepalive/sockopt.js';
import { closeFd, pidfdGetfd, pidfdOpen, readTcpInfo, SockoptError, SyscallError } from '../kernel/index.js';
import type { Finding, SocketRef } from './findings.js';
import { human } from './findings.js';
import { expiryFailure, type Middlebox } from './profiles.js';

const run = promisify(execFile);

export interface LiveSocket {
  local: string;
  peer: string;
  /** Owners as ss reports them (several after fork). */
  owners: { process: string; pid: number; fd: number }[];
  /** The kernel timer armed on the socket: `keepalive`, `on` (retransmit), `persist`, or none. */
  timer?: { kind: string; remainingMs: number; probes: number };
  /** Milliseconds since the last data sent or received (the smaller of ss lastsnd/lastrcv). */
  idleMs?: number;
  /** True when keepalive is known to be on (keepalive timer), false when no timer is armed. */
  keepalive?: boolean;
}

/**
 * ss's timer format (print_ms_timer): `1min28sec`, `28sec`, `3.580ms` (newer
 * ss: `3.580sec`), `580ms`, `12min`, and nothing at all for 0 — a timer due
 * now or overdue, which a loaded host shows often for a short keepalive.
 */
export function parseSsTimer(text: string): number | undefined {
  if (text === '') return 0;
  const m = /^(?:(\d+)min)?(?:(\d+)(sec|\.))?(?:(\d+)(?:ms|sec))?$/.exec(text);
  if (!m) return undefined;
  return Number(m[1] ?? 0) * 60_000 + Number(m[2] ?? 0) * 1000 + Number(m[4] ?? 0);
}

/** Parses `ss -tinoHp state established`: a socket line, then a tab-indented detail line. */
export function parseSs(output: string): LiveSocket[] {
  const sockets: LiveSocket[] = [];
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line)) {
      const last = sockets[sockets.length - 1];
      if (!last) continue;
      const snd = /\blastsnd:(\d+)/.exec(line);
      const rcv = /\blastrcv:(\d+)/.exec(line);
      if (snd && rcv) last.idleMs = Math.min(Number(snd[1]), Number(rcv[1]));
      continue;
    }
    const words = line.trim().split(/\s+/);
    if (words.length < 4) continue;
    const s: LiveSocket = { local: words[2]!, peer: words[3]!, owners: [] };
    const rest = words.slice(4).join(' ');
    for (const m of rest.matchAll(/\("([^"]*)",pid=(\d+),fd=(\d+)\)/g))
      s.owners.push({ process: m[1]!, pid: Number(m[2]), fd: Number(m[3]) });
    const timer = /timer:\((\w+),([^,]*),(\d+)\)/.exec(rest);
    if (timer) {
      s.timer = { kind: timer[1]!, remainingMs: parseSsTimer(timer[2]!) ?? 0, probes: Number(timer[3]) };
      if (timer[1] === 'keepalive') s.keepalive = true;
    } else {
      // An idle established socket with SO_KEEPALIVE always has the keepalive timer armed.
      s.keepalive = false;
    }
    sockets.push(s);
  }
  return sockets;
}

export async function listSockets(): Promise<LiveSocket[]> {
  try {
    const { stdout } = await run('ss', ['-tinoHp', 'state', 'established'], { maxBuffer: 256 * 1024 * 1024 });
    return parseSs(stdout);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new Error('the `ss` command is missing: apt-get install iproute2');
    throw error;
  }
}

function hostOf(endpoint: string): string {
  const m = /^\[([^\]]+)\](?::\d+|:\*)?$/.exec(endpoint);
  const host = m ? m[1]! : endpoint.replace(/:[^:]*$/, '');
  return host.replace(/%.*$/, '').replace(/^::ffff:/, '');
}

/** Loopback traffic never crosses a middlebox. */
export function isLoopbackSocket(s: { local: string; peer: string }): boolean {
  const lo = (h: string) => h.startsWith('127.') || h === '::1';
  return lo(hostOf(s.local)) && lo(hostOf(s.peer));
}

/** The line that turns keepalive on for a program, by what the program is. */
function socketFix(process: string | undefined, lb: Middlebox): string {
  const k = recommend(lb.idleSeconds).keepalive;
  if (process === 'node')
    return `socket.setKeepAlive(true, ${k.idle * 1000}); // or keepwire applyKeepalive(socket, { idle: ${k.idle}, interval: ${k.interval}, count: ${k.count} })`;
  if (process === 'nginx') return `listen ... so_keepalive=${recommend(lb.idleSeconds).soKeepalive};`;
  return `setsockopt SO_KEEPALIVE=1, TCP_KEEPIDLE=${k.idle}, TCP_KEEPINTVL=${k.interval}, TCP_KEEPCNT=${k.count} (or ${sysctlLines(sysctlSettings(recommend(lb.idleSeconds))).join(', ')} for programs that only set SO_KEEPALIVE)`;
}

function ref(s: LiveSocket): SocketRef {
  const r: SocketRef = { local: s.local, peer: s.peer };
  const o = s.owners[0];
  if (o) {
    r.pid = o.pid;
    r.fd = o.fd;
    r.process = o.process;
  }
  return r;
}

function where(r: SocketRef): string {
  return `${r.local} -> ${r.peer}${r.pid !== undefined ? ` pid ${r.pid}${r.process ? ` (${r.process})` : ''} fd ${r.fd}` : ''}`;
}

/** Host-wide findings: sockets with no keepalive idle past the LB, and keepalive timers set past it. */
export function socketFindings(sockets: LiveSocket[], lb: Middlebox | undefined): Finding[] {
  if (!lb) return [];
  const out: Finding[] = [];
  const lbMs = lb.idleSeconds * 1000;
  for (const s of sockets) {
    if (isLoopbackSocket(s)) continue;
    const r = ref(s);
    if (s.keepalive === false && s.idleMs !== undefined && s.idleMs >= lbMs) {
      out.push({
        severity: 'warning',
        code: 'socket-idle-no-keepalive',
        layer: 'sockets',
        message: `established socket idle ${human(s.idleMs / 1000)} with no keepalive, past ${lb.name}'s idle timeout ${human(lb.idleSeconds)}`,
        evidence: { where: where(r), socket: r, value: `idle ${s.idleMs}ms` },
        why: `if this connection crosses ${lb.name}, it has already been forgotten: the next use fails as ${expiryFailure(lb)}, and a dead peer is never noticed.`,
        fix: socketFix(r.process, lb),
      });
    } else if (s.timer?.kind === 'keepalive' && s.timer.remainingMs >= lbMs) {
      out.push({
        severity: 'warning',
        code: 'socket-keepalive-too-long',
        layer: 'sockets',
        message: `keepalive timer fires in ${human(s.timer.remainingMs / 1000)}, not within ${lb.name}'s idle timeout ${human(lb.idleSeconds)}`,
        evidence: { where: where(r), socket: r, value: `timer keepalive ${s.timer.remainingMs}ms` },
        why: `the next probe comes after ${lb.name} would forget a connection left idle now, and ${expiryFailure(lb)}.`,
        fix: socketFix(r.process, lb),
      });
    }
  }
  return out;
}

// ---- one process, exact values ----

export interface ProcessSocket {
  fd: number;
  local: string;
  peer: string;
  keepalive: boolean;
  idle: number;
  interval: number;
  count: number;
  /** Milliseconds; 0 = kernel retransmission rules. */
  userTimeout: number;
  /** Milliseconds since the last data sent or received (TCP_INFO). */
  idleMs: number;
}

export class PidAccessError extends Error {
  override name = 'PidAccessError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Runs a pidfd call; its failure becomes a PidAccessError with the errno name. */
function pidfdCall<T>(call: () => T, describe: (code: string) => string): T {
  try {
    return call();
  } catch (error) {
    if (error instanceof SyscallError) throw new PidAccessError(describe(error.code), error.code);
    if (process.platform !== 'linux')
      throw new PidAccessError(`--pid needs Linux pidfd_getfd, not ${process.platform}`, 'ENOSYS');
    throw error;
  }
}

/** /proc/PID/net/tcp{,6}: the process's own network namespace. inode → endpoints of established sockets. */
function tcpTable(pid: number): Map<string, { local: string; peer: string }> {
  const map = new Map<string, { local: string; peer: string }>();
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '01') continue;
      map.set(f[9]!, { local: hexEndpoint(f[1]!), peer: hexEndpoint(f[2]!) });
    }
  }
  return map;
}

/** `0100007F:1F90` → `127.0.0.1:8080`; IPv6 in four host-order 32-bit words. */
export function hexEndpoint(text: string): string {
  const [addr = '', port = '0'] = text.split(':');
  const p = Number.parseInt(port, 16);
  if (addr.length === 8) {
    const b = Buffer.from(addr, 'hex').reverse();
    return `${[...b].join('.')}:${p}`;
  }
  const words: string[] = [];
  for (let i = 0; i < 32; i += 8)
    words.push(
      Buffer.from(addr.slice(i, i + 8), 'hex')
        .reverse()
        .toString('hex'),
    );
  const hex = words.join('');
  if (hex.startsWith('00000000000000000000ffff'))
    return `${[...Buffer.from(hex.slice(24), 'hex')].join('.')}:${p}`;
  const groups = hex.match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, ''));
  return `[${groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]:${p}`;
}

/**
 * Exact keepalive settings of every established TCP socket of a process.
 * Throws PidAccessError with EPERM when this process may not ptrace it.
 */
export function readProcessSockets(pid: number): ProcessSocket[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') throw new PidAccessError(`no process with pid ${pid}`, 'ESRCH');
    throw new PidAccessError(
      `cannot list the descriptors of pid ${pid} (${code}): reading another process's sockets needs ptrace rights (root, or CAP_SYS_PTRACE, or the same user with kernel.yama.ptrace_scope = 0)`,
      code,
    );
  }
  const table = tcpTable(pid);
  const mine: { fd: number; ends: { local: string; peer: string } }[] = [];
  for (const name of fds) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${name}`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      // A descriptor closed meanwhile is fine; a refused one means we may not look: say so, never report "no sockets".
      if (code === 'ENOENT') continue;
      throw new PidAccessError(
        `cannot read the descriptors of pid ${pid} (${code}): reading another process's sockets needs ptrace rights (root, or CAP_SYS_PTRACE, or the same user with kernel.yama.ptrace_scope = 0)`,
        code === 'EACCES' ? 'EPERM' : code,
      );
    }
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    const ends = inode === undefined ? undefined : table.get(inode);
    if (ends) mine.push({ fd: Number(name), ends });
  }
  if (mine.length === 0) return [];
  const pidfd = pidfdCall(
    () => pidfdOpen(pid),
    (code) => `pidfd_open(${pid}) failed: ${code}`,
  );
  const out: ProcessSocket[] = [];
  try {
    for (const { fd, ends } of mine) {
      let dup: number;
      try {
        dup = pidfdGetfd(pidfd, fd);
      } catch (error) {
        if (!(error instanceof SyscallError)) throw error;
        if (error.code === 'EBADF') continue; // closed since we listed it
        throw new PidAccessError(
          error.code === 'EPERM'
            ? `pidfd_getfd on pid ${pid} was refused (EPERM): reading another process's socket options needs ptrace rights over it — run as root, or with CAP_SYS_PTRACE, or as the same user with kernel.yama.ptrace_scope = 0`
            : `pidfd_getfd(pid ${pid}, fd ${fd}) failed: ${error.code}`,
          error.code,
        );
      }
      try {
        let idleMs = 0;
        try {
          const info = readTcpInfo(dup);
          idleMs = Math.min(info.lastDataSentMs, info.lastDataRecvMs);
        } catch (error) {
          if (!(error instanceof SockoptError)) throw error;
        }
        const k = readKeepaliveFd(dup);
        out.push({
          fd,
          ...ends,
          keepalive: k.enabled,
          idle: k.idle,
          interval: k.interval,
          count: k.count,
          userTimeout: k.userTimeout,
          idleMs,
        });
      } catch (error) {
        if (!(error instanceof SockoptError)) throw error;
      } finally {
        closeFd(dup);
      }
    }
  } finally {
    closeFd(pidfd);
  }
  return out.sort((a, b) => a.fd - b.fd);
}

export function processFindings(
  pid: number,
  sockets: ProcessSocket[],
  lb: Middlebox | undefined,
  processName?: string,
): Finding[] {
  if (!lb) return [];
  const out: Finding[] = [];
  for (const s of sockets) {
    if (isLoopbackSocket(s)) continue;
    const r: SocketRef = { local: s.local, peer: s.peer, pid, fd: s.fd };
    if (processName) r.process = processName;
    const values = s.keepalive
      ? `SO_KEEPALIVE=1 TCP_KEEPIDLE=${s.idle} TCP_KEEPINTVL=${s.interval} TCP_KEEPCNT=${s.count} TCP_USER_TIMEOUT=${s.userTimeout}`
      : `SO_KEEPALIVE=0 TCP_USER_TIMEOUT=${s.userTimeout}`;
    if (!s.keepalive) {
      const idlePast = s.idleMs >= lb.idleSeconds * 1000;
      out.push({
        severity: idlePast ? 'error' : 'warning',
        code: 'pid-socket-no-keepalive',
        layer: 'sockets',
        message: `socket has keepalive off${idlePast ? ` and has been idle ${human(s.idleMs / 1000)}, past ${lb.name}'s ${human(lb.idleSeconds)}` : ''}`,
        evidence: { where: where(r), socket: r, value: values },
        why: `once idle for ${human(lb.idleSeconds)} it is forgotten by ${lb.name} with nothing to refresh it: ${expiryFailure(lb)}; a dead peer is never noticed.`,
        fix: socketFix(processName, lb),
      });
      continue;
    }
    const period = probePeriod(s);
    if (period >= lb.idleSeconds) {
      out.push({
        severity: 'error',
        code: 'pid-socket-keepalive-too-long',
        layer: 'sockets',
        message: `keepalive probes every max(${s.idle}, ${s.interval}) = ${human(period)}, not below ${lb.name}'s idle timeout ${human(lb.idleSeconds)}`,
        evidence: { where: where(r), socket: r, value: values },
        why: `an idle connection is forgotten by ${lb.name} before the first probe, and ${expiryFailure(lb)}.`,
        fix: socketFix(processName, lb),
      });
    }
  }
  return out;
}

export function processName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
