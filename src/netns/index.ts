export { type AgentEvent, SocketAgent } from './agent.js';
export { type Capability, hasCommand, netnsAvailable } from './capability.js';
export {
  createLbTopology,
  createPairTopology,
  type Expiry,
  LB_ADDRESSES,
  LB6_ADDRESSES,
  type LbKind,
  type LbTopology,
  type LbTopologyOptions,
  PAIR6_ADDRESSES,
  type PairTopology,
} from './lb.js';
export {
  cleanupStale,
  destroyAllTopologies,
  type ExecResult,
  Host,
  type LinkEnd,
  listNamespaces,
  NS_PREFIX,
  Topology,
} from './topology.js';
