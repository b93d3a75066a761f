import type { Variant } from './scenario.js';
import { deadPeer } from './scenarios/dead-peer.js';
import { grpc } from './scenarios/grpc.js';
import { idlePool } from './scenarios/idle-pool.js';
import { l4Proxy } from './scenarios/l4-proxy.js';
import { longRequest, longRequestHttps } from './scenarios/long-request.js';
import { websocket } from './scenarios/websocket.js';

export { type LabOptions, type LabReport, type LabSysctl, runLab } from './runner.js';
export type { Observation, Outcome, Variant, VariantResult } from './scenario.js';

/** Every scenario, by name, in the order they are shown. */
export const SCENARIOS: Record<string, Variant[]> = {
  'long-request': longRequest,
  'long-request-https': longRequestHttps,
  'idle-pool': idlePool,
  'dead-peer': deadPeer,
  'l4-proxy': l4Proxy,
  websocket,
  grpc,
};

export const DEFAULT_SCENARIOS = ['long-request'];
