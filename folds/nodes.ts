import * as Schema from "effect/Schema"
import { defineFold, type FoldDefinition } from "./fold.ts"

/**
 * `nodes`: membership from heartbeats. A heartbeat carries the node's whole state (zone,
 * interval, and its watermark per fold, which is how peers notice they are behind), so the
 * fold `replaces` and a lost heartbeat costs nothing. Liveness and RTT are *local*
 * observations (receive time, our own pings): they are never gossiped.
 */

/** Default heartbeat interval. */
export const DEFAULT_HEARTBEAT_MS = 1000
/** Liveness timeout, in heartbeat intervals, when none is configured. */
export const LIVENESS_INTERVALS = 3

/** A node id: subject-safe, since it is the last token of the subjects a node publishes on. */
export const NodeId = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,128}$/))

/** One heartbeat: the sender's zone, interval and per-fold watermark (seq of its last event). */
export const Heartbeat = Schema.Struct({
  zone: Schema.optional(Schema.String),
  intervalMs: Schema.Finite.check(Schema.isGreaterThan(0)),
  // a watermark is a seq: a safe integer, never a fraction or 1e400 (Infinity, which JSON writes back as null)
  watermarks: Schema.Record(Schema.String, Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
})
/** Decoded heartbeat payload. */
export type Heartbeat = typeof Heartbeat.Type

interface NodeInfo {
  readonly zone: string | undefined
  readonly intervalMs: number
  readonly watermarks: Readonly<Record<string, number>>
  readonly lastSeen: number
}

/** The state of the `nodes` fold, with its queries. */
export class NodeIndex {
  readonly #nodes = new Map<string, NodeInfo>()
  readonly #rtt = new Map<string, number>()

  /** `timeoutMs`: fixed liveness timeout; by default 3× each node's own advertised interval. */
  constructor(readonly timeoutMs?: number) {}

  /** Records a heartbeat received at `now`. */
  heartbeat(node: string, hb: Heartbeat, now: number): void {
    this.#nodes.set(node, { zone: hb.zone, intervalMs: hb.intervalMs, watermarks: hb.watermarks, lastSeen: now })
  }

  /** The last heartbeat of `node`, if any. */
  heartbeatOf(node: string): Heartbeat | undefined {
    const n = this.#nodes.get(node)
    if (n === undefined) return undefined
    return n.zone === undefined
      ? { intervalMs: n.intervalMs, watermarks: n.watermarks }
      : { zone: n.zone, intervalMs: n.intervalMs, watermarks: n.watermarks }
  }

  /** True when `node` was heard from within its liveness timeout. */
  isAlive(node: string, now = Date.now()): boolean {
    const n = this.#nodes.get(node)
    return n !== undefined && now - n.lastSeen < (this.timeoutMs ?? LIVENESS_INTERVALS * n.intervalMs)
  }

  /** Live nodes (sorted by id), including ourselves once our heartbeat is folded. */
  liveNodes(now = Date.now()): string[] {
    return [...this.#nodes.keys()].filter((n) => this.isAlive(n, now)).sort()
  }

  /** Every node ever heard from and not yet forgotten. */
  knownNodes(): string[] {
    return [...this.#nodes.keys()].sort()
  }

  /** Milliseconds since `node` was last heard from (undefined: never). */
  silentFor(node: string, now = Date.now()): number | undefined {
    const n = this.#nodes.get(node)
    return n === undefined ? undefined : now - n.lastSeen
  }

  /** The zone `node` advertises, if any. */
  zoneOf(node: string): string | undefined {
    return this.#nodes.get(node)?.zone
  }

  /** Smoothed round-trip time to `node` in ms, as measured by our own pings. */
  rttOf(node: string): number | undefined {
    return this.#rtt.get(node)
  }

  /** Folds one RTT sample in (EWMA, α = 0.3, so one slow ping does not reorder holders). */
  recordRtt(node: string, ms: number): void {
    const prev = this.#rtt.get(node)
    this.#rtt.set(node, prev === undefined ? ms : prev * 0.7 + ms * 0.3)
  }

  /** Forgets `node` (membership and RTT). */
  clear(node: string): void {
    this.#nodes.delete(node)
    this.#rtt.delete(node)
  }
}

/** Builds the `nodes` fold definition (name `nodes`). */
export function nodesFold(opts: { timeoutMs?: number } = {}): FoldDefinition<NodeIndex, Heartbeat, Heartbeat> {
  return defineFold({
    name: "nodes",
    data: Heartbeat,
    entry: Heartbeat,
    replaces: true,
    initial: () => new NodeIndex(opts.timeoutMs),
    apply(state, hb, { origin, now }) {
      state.heartbeat(origin, hb, now)
      return state
    },
    snapshotOrigin(state, origin) {
      const hb = state.heartbeatOf(origin)
      return hb === undefined ? [] : [hb]
    },
    restoreOrigin(state, origin, entries, now) {
      const hb = entries[entries.length - 1]
      if (hb === undefined) state.clear(origin)
      else state.heartbeat(origin, hb, now)
      return state
    },
  })
}
