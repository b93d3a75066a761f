/**
 * The messages between the master and its workers (one IPC channel per
 * worker, Node's `advanced` serialization: structured clone, so the checked
 * Config model, with its Maps and shared Listen objects, arrives as the
 * master checked it).
 */
import type { Config } from '../config/model.js';
import type { GatherTopic } from './gather.js';

export type ToWorker =
  /** The configuration the master checked and resolved, and the descriptor of each address key. */
  | {
      type: 'start';
      config: Config;
      fds: Record<string, number>;
      generation: number;
      /** TLS session ticket keys, the same for every worker of the generation (a ticket resumes on any). */
      ticketKeys: Uint8Array;
    }
  /** A stop signal, as if sent to the worker: SIGQUIT drains, SIGTERM after it resets at once. */
  | {
      type: 'signal';
      signal: 'SIGQUIT' | 'SIGTERM';
      /** An old generation of a reload: drain as SIGQUIT, but `health` stays 200 (the instance is not leaving). */
      reload?: true;
    }
  /** The master asks for this worker's `collectLocal(topic)`. */
  | { type: 'collect'; id: number; topic: GatherTopic }
  /** The answer to a worker's `gather`. */
  | { type: 'gathered'; id: number; answers: unknown[] };

export type ToMaster =
  | { type: 'listening' }
  /** The configuration could not be started here (the message is what serve prints). */
  | { type: 'failed'; message: string; exitCode: 1 | 2 }
  | { type: 'gather'; id: number; topic: GatherTopic }
  | { type: 'collected'; id: number; value: unknown };

/** First descriptor index of the inherited listening sockets (0-2 stdio, 3 the IPC channel). */
export const FIRST_LISTEN_FD = 4;

/** How long the master waits for one worker's collector before skipping it. */
export const COLLECT_TIMEOUT_MS = 2000;
