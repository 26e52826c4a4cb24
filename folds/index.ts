/**
 * folds/: state folded from bus subjects (DESIGN.md §4). Pure reducers with per-origin
 * watermarks and snapshots, plus one materializer that feeds them through the `FoldBus` port.
 */

/** The bus port the plugin adapts its NATS connection to. */
export type { FoldBus, FoldBusMessage, FoldBusSubscription } from "./bus.ts"
/** The public fold primitive: applications define their own folds with it. */
export {
  type AnyFoldDefinition,
  type ApplyResult,
  defineFold,
  Fold,
  type FoldDefinition,
  type FoldEvent,
  type FoldMeta,
  type FoldOptions,
  type FoldSnapshot,
  type FoldSpec,
  type PageCodec,
  type RejectReason,
  type Watermark,
} from "./fold.ts"
/** Read heat: decayed per-blob, per-node counters and top-N. */
export { DEFAULT_HEAT_HALF_LIFE_MS, HeatDelta, HeatEntry, HeatIndex, heatFold } from "./heat.ts"
/** Holders: who holds which hash, and the nearest live ones. */
export { HashHex, HolderEntry, HolderIndex, HoldersDelta, type HoldingKind, holdersFold, holdersFoldWith, type NearestOptions } from "./holders.ts"
/** The materializer: own facts out, peers' facts in, sync on gaps and late joins. */
export { type FoldLimits, Materializer, type MaterializerOptions, type MaterializerStats } from "./materializer.ts"
/** Membership, liveness, zone and RTT. */
export { DEFAULT_HEARTBEAT_MS, Heartbeat, LIVENESS_INTERVALS, NodeId, NodeIndex, nodesFold } from "./nodes.ts"
/** Subjects and the sync page format (docs/PROTOCOL.md mirrors this). */
export { DEFAULT_PREFIX, MAX_PAGE_BYTES, subjects } from "./wire.ts"
