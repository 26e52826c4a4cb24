import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { BadRefError, ClosedError } from "../storage/format/errors.ts"
import { isHashHex } from "../storage/format/hex.ts"
import type { FoldBus, FoldBusMessage, FoldBusSubscription } from "./bus.ts"
import type { AnyFoldDefinition, Fold, FoldDefinition, FoldOptions } from "./fold.ts"
import { DEFAULT_HEAT_HALF_LIFE_MS, type HeatIndex, heatFold } from "./heat.ts"
import { DEFAULT_MAX_HOLDINGS_PER_NODE, type HolderIndex, type HoldingKind, holdersFoldWith } from "./holders.ts"
import { DEFAULT_HEARTBEAT_MS, type NodeIndex, nodesFold } from "./nodes.ts"
import {
  DEFAULT_PREFIX,
  decodeEntries,
  decodeOr,
  decodePage,
  Envelope,
  encodePage,
  jsonBytes,
  MAX_PAGE_BYTES,
  paginate,
  parseJson,
  SyncRequest,
  subjects,
} from "./wire.ts"

/** Options of a `Materializer`. Only `bus` and `node` are required. */
export interface MaterializerOptions {
  /** The bus port (the plugin adapts its NATS connection). */
  readonly bus: FoldBus
  /** This node's id: subject-safe (`[A-Za-z0-9_-]`). */
  readonly node: string
  /** Subject prefix shared by the deployment (default `dataforts`). */
  readonly prefix?: string
  /** This node's zone, advertised in heartbeats and used to order holders. */
  readonly zone?: string
  /** Heartbeat interval (default 1000 ms); the liveness sweep and pings share it. */
  readonly heartbeatMs?: number
  /** Liveness timeout (default 3 × each peer's advertised interval). */
  readonly livenessTimeoutMs?: number
  /** A node silent this long is forgotten by every fold (default 20 × heartbeat). */
  readonly forgetAfterMs?: number
  /** Heat half-life (default 10 min). */
  readonly heatHalfLifeMs?: number
  /** Own holder deltas are coalesced this long (default 20 ms) or up to `batchMax` hashes. */
  readonly holdersBatchMs?: number
  /** Own read deltas are coalesced this long (default 250 ms) or up to `batchMax` hashes. */
  readonly heatBatchMs?: number
  /** Most hashes in one event (default 1000). */
  readonly batchMax?: number
  /** Timeout of one sync page request (default 2000 ms). */
  readonly syncTimeoutMs?: number
  /** Application folds materialized alongside nodes, holders and heat. */
  readonly folds?: ReadonlyArray<AnyFoldDefinition>
  /**
   * Most origins each fold keeps state for (default 1024). Past it, the least recently
   * heard origin that is not live is evicted; when all are live, the new origin is refused.
   */
  readonly maxOrigins?: number
  /** Most hashes one live node may advertise in `holders` (default 10M). */
  readonly maxHoldingsPerNode?: number
  /** Most (hash, holder) pairs in `holders` over all nodes (default 64M). */
  readonly maxHolderPairs?: number
  /** Most distinct hashes one live node may report reads of in `heat` (default 100k). */
  readonly maxHeatPerNode?: number
  /** Entries an origin without a live heartbeat may have in `holders` and `heat` (default 1024). */
  readonly notLiveQuota?: number
  /** Largest seq step an event may claim past what is applied (default 65536). */
  readonly maxSeqJump?: number
  /** How far ahead of our clock an epoch (µs since 1970) may be (default 10 min). */
  readonly maxEpochSkewMs?: number
  /** Local clock (tests). */
  readonly now?: () => number
}

/** The caps on what peers can make a node hold (folds/README.md § Forged traffic has the defaults). */
export type FoldLimits = Pick<MaterializerOptions, "maxOrigins" | "maxHoldingsPerNode" | "maxHolderPairs" | "maxHeatPerNode" | "notLiveQuota" | "maxSeqJump" | "maxEpochSkewMs">

/** Counters for observability (and tests): what was dropped, synced, gapped. */
export interface MaterializerStats {
  /** Events, requests or pages that failed to decode and were dropped. */
  malformed: number
  /** Events applied from peers. */
  applied: number
  /** Gaps seen (events held back). */
  gaps: number
  /** Origin snapshots restored. */
  syncs: number
  /** Sync attempts that failed (timeout, bad page); retried on the next heartbeat. */
  syncFailures: number
  /** Sync pages served to peers. */
  pagesServed: number
  /** Events refused, by fold and reason (see `RejectReason` and folds/README.md § Forged traffic). */
  readonly rejected: Record<string, Record<string, number>>
  /** Syncs not started: the origin's backoff had not expired, or too many were in flight. */
  syncsDeferred: number
}

/**
 * Events wait in a queue and are folded in slices of at most `SLICE_MS`, with the event loop
 * free between slices: a flood arrives faster than it can be decoded, and folding it
 * straight from the subscription would run for seconds without a timer, a read or a reply
 * getting a turn. Past `MAX_QUEUED` events (or bytes), events of origins not yet known are
 * dropped (counted as `overload`); known ones still get in up to twice that.
 */
const MAX_QUEUED = 20_000
const MAX_QUEUED_BYTES = 64 << 20
const SLICE_MS = 5

/** Most syncs in flight at once: a flood of made-up origins cannot hold every slot for long. */
const MAX_SYNCS_IN_FLIGHT = 16
/** A failing origin's syncs back off up to this. */
const MAX_SYNC_BACKOFF_MS = 30_000
/** Defaults of the caps (MaterializerOptions). */
const DEFAULT_MAX_ORIGINS = 1024
const DEFAULT_MAX_HEAT_PER_NODE = 100_000
const DEFAULT_NOT_LIVE_QUOTA = 1024
const DEFAULT_MAX_EPOCH_SKEW_MS = 10 * 60_000

/** FNV-1a over the message bytes: tells a forged event from the real one at the same seq. */
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193)
  return h >>> 0
}

/**
 * `Effect.sleep` on an unref'd timer: a fold's periodic work (heartbeats, sweeps, pings,
 * decay) never keeps a process alive on its own. It only matters while the bus is up, and an
 * open NATS connection holds the process anyway.
 */
const unrefSleep = (ms: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    timer.unref?.()
    return Effect.sync(() => clearTimeout(timer))
  })

/** Snapshots captured for paging are kept this long for the following page requests. */
const CAPTURE_TTL_MS = 30_000
const PAGE_BODY_BYTES = MAX_PAGE_BYTES - 4096

interface Capture {
  readonly fold: string
  readonly epoch: number
  readonly seq: number
  readonly pages: Uint8Array[]
  readonly expires: number
}

/**
 * Feeds folds from the bus and publishes this node's own facts (DESIGN.md §4).
 *
 * Own facts go out as events `<prefix>.fold.<fold>.<node>` with the next per-fold seq and
 * are folded locally at once. Peers answer snapshot requests for their own facts on
 * `<prefix>.sync.<node>` (paged). Heartbeats on the `nodes` fold carry each fold's seq, so a
 * node that joins late, or misses an event, sees a watermark ahead of what it applied,
 * fetches that origin's snapshot and continues with deltas: everyone converges within a
 * couple of heartbeats without anyone re-publishing.
 *
 * @example
 * const m = new Materializer({ bus: natsFoldBus(nc), node: "a", zone: "eu-1" })
 * m.start()
 * m.have([refHashHex])                      // batched `holders` delta
 * m.nearestHolders(refHashHex)              // live holders, same zone first, then RTT
 * await m.close()
 */
export class Materializer {
  readonly node: string
  readonly prefix: string
  readonly zone: string | undefined
  readonly heartbeatMs: number
  /** Counters; read-only for callers. */
  readonly stats: MaterializerStats = { malformed: 0, applied: 0, gaps: 0, syncs: 0, syncFailures: 0, pagesServed: 0, rejected: {}, syncsDeferred: 0 }

  /** The `nodes` fold. */
  readonly nodes: Fold<NodeIndex, unknown, unknown>
  /** The `holders` fold. */
  readonly holders: Fold<HolderIndex, unknown, unknown>
  /** The `heat` fold. */
  readonly heat: Fold<HeatIndex, unknown, unknown>

  readonly #bus: FoldBus
  readonly #subjects: ReturnType<typeof subjects>
  readonly #now: () => number
  readonly #epoch: number
  readonly #opts: MaterializerOptions
  readonly #folds = new Map<string, Fold<unknown, unknown, unknown>>()
  readonly #ownSeq = new Map<string, number>()
  readonly #subs: FoldBusSubscription[] = []
  readonly #fibers: Array<Fiber.Fiber<unknown, unknown>> = []
  readonly #inflight = new Map<string, Promise<void>>()
  readonly #pings = new Set<Promise<void>>()
  readonly #captures = new Map<string, Capture>()
  /** Events not yet folded, oldest first from `#queueHead` (see MAX_QUEUED). */
  readonly #queue: Array<{ fold: string; msg: FoldBusMessage; at: number }> = []
  #queueHead = 0
  #queuedBytes = 0
  #drainHandle: ReturnType<typeof setImmediate> | undefined
  /** Per built-in fold, the most entries an origin may contribute now. */
  #limits: Record<string, (origin: string) => number> = {}
  /** Per (fold, origin): when the next sync may start, and the current backoff. */
  readonly #syncGate = new Map<string, { next: number; backoff: number }>()
  #pingCursor = 0

  readonly #holderBatch = new Map<string, HoldingKind | "drop">()
  #holderTimer: ReturnType<typeof setTimeout> | undefined
  readonly #heatBatch = new Map<string, number>()
  #heatTimer: ReturnType<typeof setTimeout> | undefined

  #started = false
  #closing: Promise<void> | undefined
  /** Stops watching the bus for its end (set while started). */
  #unwatchBus: (() => void) | undefined
  /** Stops watching the bus for reconnects (set while started). */
  #unwatchReconnect: (() => void) | undefined
  /** The follow-up heartbeats after a reconnect, pending. */
  readonly #reconnectBeats = new Set<ReturnType<typeof setTimeout>>()
  /** The bus is gone for good (its connection closed): nothing more goes out. */
  #busGone = false

  constructor(opts: MaterializerOptions) {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(opts.node)) throw new TypeError("node id must be subject-safe ([A-Za-z0-9_-])")
    this.#opts = opts
    this.#bus = opts.bus
    this.node = opts.node
    this.prefix = opts.prefix ?? DEFAULT_PREFIX
    this.zone = opts.zone
    this.heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS
    this.#subjects = subjects(this.prefix)
    this.#now = opts.now ?? Date.now
    // a restarted node starts again at seq 1 under a larger epoch
    this.#epoch = Date.now() * 1000 + Math.floor(Math.random() * 1000)
    const defs: AnyFoldDefinition[] = [
      nodesFold(opts.livenessTimeoutMs === undefined ? {} : { timeoutMs: opts.livenessTimeoutMs }),
      holdersFoldWith(opts.maxHolderPairs === undefined ? {} : { maxPairs: opts.maxHolderPairs }),
      heatFold(opts.heatHalfLifeMs ?? DEFAULT_HEAT_HALF_LIFE_MS),
      ...(opts.folds ?? []),
    ]
    const quota = opts.notLiveQuota ?? DEFAULT_NOT_LIVE_QUOTA
    // what a peer may make us hold: own facts are never capped; an origin whose heartbeat is
    // on record up to the fold's cap; one without (made up, or not heard yet) a small quota.
    // Not "alive right now": a restore while a busy event loop delays heartbeats would be cut
    // short for good
    const limitBy = (max: number) => (origin: string) => (origin === this.node ? Number.POSITIVE_INFINITY : this.nodes.watermarkOf(origin) !== undefined ? max : quota)
    const limits: Record<string, (origin: string) => number> = (this.#limits = {
      holders: limitBy(opts.maxHoldingsPerNode ?? DEFAULT_MAX_HOLDINGS_PER_NODE),
      heat: limitBy(opts.maxHeatPerNode ?? DEFAULT_MAX_HEAT_PER_NODE),
    })
    for (const def of defs) {
      if (this.#folds.has(def.name)) throw new TypeError(`duplicate fold name: ${def.name}`)
      const limit = limits[def.name]
      const foldOpts: FoldOptions = {
        maxOrigins: opts.maxOrigins ?? DEFAULT_MAX_ORIGINS,
        evictable: (origin) => this.#evictable(def.name, origin),
        confirmEpochs: true,
        ...(opts.maxSeqJump === undefined ? {} : { maxSeqJump: opts.maxSeqJump }),
        ...(limit === undefined ? {} : { entryLimit: limit }),
      }
      this.#folds.set(def.name, def.create(foldOpts))
    }
    this.nodes = this.#folds.get("nodes") as Fold<NodeIndex, unknown, unknown>
    this.holders = this.#folds.get("holders") as Fold<HolderIndex, unknown, unknown>
    this.heat = this.#folds.get("heat") as Fold<HeatIndex, unknown, unknown>
  }

  /**
   * Subscribes to every fold's events, the sync and ping subjects, starts the heartbeat,
   * liveness sweep and decay, and sends the first heartbeat at once. Idempotent.
   */
  start(): this {
    if (this.#closing !== undefined) throw new ClosedError("materializer")
    if (this.#started) return this
    this.#started = true
    for (const name of this.#folds.keys()) {
      this.#subs.push(this.#bus.subscribe(this.#subjects.events(name), (m) => this.#enqueue(name, m)))
    }
    this.#subs.push(this.#bus.subscribe(this.#subjects.sync(this.node), (m) => this.#onSyncRequest(m)))
    this.#subs.push(this.#bus.subscribe(this.#subjects.ping(this.node), (m) => m.respond(new Uint8Array(0))))
    // back after an outage: our events and heartbeats sent meanwhile are lost and peers may
    // think us dead; a heartbeat now makes us live again and carries our watermarks, so they
    // sync what they missed at once (theirs reach us with their next heartbeat)
    this.#unwatchReconnect = this.#bus.onReconnect?.(() => this.#afterReconnect())
    // a bus whose connection closed takes the materializer with it: its timers, fibers and
    // requests stop at once, whether or not close() is ever called
    this.#unwatchBus = this.#bus.onClose?.(() => {
      this.#busGone = true
      void this.close()
    })
    this.#every(this.heartbeatMs, () => {
      this.#heartbeat()
      this.#sweep()
      this.#ping()
    })
    const halfLife = this.#opts.heatHalfLifeMs ?? DEFAULT_HEAT_HALF_LIFE_MS
    this.#every(Math.max(1000, Math.min(60_000, halfLife / 10)), () => this.heat.state.decay(this.#now()))
    this.#heartbeat()
    return this
  }

  /** The running fold of an application definition passed in `folds` (or a built-in). */
  fold<S, D, E>(def: FoldDefinition<S, D, E>): Fold<S, D, E> {
    const f = this.#folds.get(def.name)
    if (f === undefined) throw new TypeError(`fold not materialized: ${def.name}`)
    return f as unknown as Fold<S, D, E>
  }

  /**
   * Publishes one of this node's own facts on an application fold (or a built-in one) with
   * the next seq, folding it locally first. `data` must match the fold's Schema.
   */
  publish<D>(def: FoldDefinition<unknown, D, unknown> | string, data: D): void {
    if (this.#closing !== undefined) throw new ClosedError("materializer")
    this.#publishOwn(def, data)
  }

  #publishOwn<D>(def: FoldDefinition<unknown, D, unknown> | string, data: D): void {
    const name = typeof def === "string" ? def : def.name
    const fold = this.#folds.get(name)
    if (fold === undefined) throw new TypeError(`fold not materialized: ${name}`)
    const seq = (this.#ownSeq.get(name) ?? 0) + 1
    this.#ownSeq.set(name, seq)
    fold.apply({ origin: this.node, epoch: this.#epoch, seq, data }, this.#now())
    if (!this.#started || this.#busGone) return
    try {
      this.#bus.publish(this.#subjects.event(name, this.node), jsonBytes({ origin: this.node, epoch: this.#epoch, seq, data }))
    } catch {
      // the bus refused (closing, draining): at most once, as a lost message; peers catch up
      // through the next heartbeat's watermarks and a sync
    }
  }

  /** Advertises that this node holds `hashes` (whole blobs by ref hash, or single chunks). Batched. */
  have(hashes: Iterable<string>, kind: HoldingKind = "blob"): void {
    for (const h of hashes) this.#queueHolder(h, kind)
  }

  /** Advertises that this node no longer holds `hashes`. Batched. */
  drop(hashes: Iterable<string>): void {
    for (const h of hashes) this.#queueHolder(h, "drop")
  }

  /** Counts `n` reads of `hashHex` on this node (batched into one `heat` event). */
  recordRead(hashHex: string, n = 1): void {
    if (this.#closing !== undefined) throw new ClosedError("materializer")
    if (!isHashHex(hashHex)) throw new BadRefError("not a 64-hex hash")
    this.#heatBatch.set(hashHex, (this.#heatBatch.get(hashHex) ?? 0) + n)
    if (this.#heatBatch.size >= (this.#opts.batchMax ?? 1000)) this.#flushHeat()
    else this.#heatTimer ??= setTimeout(() => this.#flushHeat(), this.#opts.heatBatchMs ?? 250)
  }

  /** Publishes batched own deltas now (close() does this too). */
  flush(): void {
    this.#flushHolders()
    this.#flushHeat()
  }

  /** Nodes heard from within the liveness timeout (ourselves included once started). */
  liveNodes(): string[] {
    return this.nodes.state.liveNodes(this.#heardNow())
  }

  /** True when `node` was heard from within its liveness timeout. */
  isAlive(node: string): boolean {
    return this.nodes.state.isAlive(node, this.#heardNow())
  }

  /** Smoothed RTT to `node` from our pings (ms). */
  rttOf(node: string): number | undefined {
    return this.nodes.state.rttOf(node)
  }

  /** The zone `node` advertises. */
  zoneOf(node: string): string | undefined {
    return node === this.node ? this.zone : this.nodes.state.zoneOf(node)
  }

  /** Every node that advertises `hashHex` (live or not). */
  holdersOf(hashHex: string): string[] {
    return this.holders.state.holdersOf(hashHex)
  }

  /** Live holders of `hashHex` except this node: same zone first, then by RTT. */
  nearestHolders(hashHex: string): string[] {
    return this.holders.state.nearestHolders(hashHex, {
      self: this.node,
      isAlive: (n) => this.isAlive(n),
      rttOf: (n) => this.rttOf(n),
      zoneOf: (n) => this.zoneOf(n),
      ...(this.zone === undefined ? {} : { myZone: this.zone }),
    })
  }

  /** Decayed read heat of `hashHex` across the cluster. */
  heatOf(hashHex: string): number {
    return this.heat.state.heatOf(hashHex, this.#now())
  }

  /** The `n` hottest hashes across the cluster. */
  topN(n: number): Array<{ hash: string; heat: number }> {
    return this.heat.state.topN(n, this.#now())
  }

  /** This node's last published seq per fold (what its heartbeat advertises). */
  ownWatermarks(): Record<string, number> {
    return Object.fromEntries(this.#ownSeq)
  }

  /**
   * Flushes batched deltas, stops every timer and fiber, unsubscribes, and waits for
   * in-flight syncs and pings. Idempotent; safe to call while a close is in progress.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async #close(): Promise<void> {
    this.#unwatchBus?.()
    this.#unwatchBus = undefined
    this.#unwatchReconnect?.()
    this.#unwatchReconnect = undefined
    for (const t of this.#reconnectBeats) clearTimeout(t)
    this.#reconnectBeats.clear()
    try {
      // batched own deltas go out (not to a bus that is gone: they would be refused)
      if (this.#started && !this.#busGone) this.#flushHolders()
      if (this.#started && !this.#busGone) this.#flushHeat()
    } finally {
      clearTimeout(this.#holderTimer)
      clearTimeout(this.#heatTimer)
      this.#holderTimer = this.#heatTimer = undefined
    }
    await Effect.runPromise(Fiber.interruptAll(this.#fibers.splice(0)))
    for (const s of this.#subs.splice(0)) {
      try {
        s.unsubscribe()
      } catch {
        // the bus is gone: so is the subscription
      }
    }
    // bounded: every ping and sync page request has its timeout (a closed bus rejects at once)
    await Promise.allSettled([...this.#inflight.values(), ...this.#pings])
    this.#captures.clear()
    if (this.#drainHandle !== undefined) clearImmediate(this.#drainHandle)
    this.#drainHandle = undefined
    this.#queue.length = 0
    this.#queueHead = 0
    this.#queuedBytes = 0
  }

  /** A supervised repeating task: an Effect fiber interrupted by close(), on unref'd timers. */
  #every(ms: number, task: () => void): void {
    const tick = Effect.sync(() => {
      try {
        task()
      } catch {
        // a failing tick must not kill the timer; the next tick retries
      }
    })
    this.#fibers.push(Effect.runFork(Effect.forever(Effect.andThen(unrefSleep(ms), tick))))
  }

  #queueHolder(hashHex: string, op: HoldingKind | "drop"): void {
    if (this.#closing !== undefined) throw new ClosedError("materializer")
    if (!isHashHex(hashHex)) throw new BadRefError("not a 64-hex hash")
    // last op within the window wins: have-then-drop is a drop
    this.#holderBatch.delete(hashHex)
    this.#holderBatch.set(hashHex, op)
    if (this.#holderBatch.size >= (this.#opts.batchMax ?? 1000)) this.#flushHolders()
    else this.#holderTimer ??= setTimeout(() => this.#flushHolders(), this.#opts.holdersBatchMs ?? 20)
  }

  #flushHolders(): void {
    clearTimeout(this.#holderTimer)
    this.#holderTimer = undefined
    if (this.#holderBatch.size === 0) return
    const blob: string[] = []
    const chunk: string[] = []
    const remove: string[] = []
    for (const [h, op] of this.#holderBatch) (op === "drop" ? remove : op === "chunk" ? chunk : blob).push(h)
    this.#holderBatch.clear()
    if (blob.length > 0 || remove.length > 0) this.#publishOwn("holders", { add: blob, remove })
    if (chunk.length > 0) this.#publishOwn("holders", { add: chunk, remove: [], kind: "chunk" })
  }

  #flushHeat(): void {
    clearTimeout(this.#heatTimer)
    this.#heatTimer = undefined
    if (this.#heatBatch.size === 0) return
    const reads = [...this.#heatBatch]
    this.#heatBatch.clear()
    this.#publishOwn("heat", { reads })
  }

  /**
   * A heartbeat now, and again 1 s and 3 s later (when sooner than the next regular one):
   * peers whose own connections come back a moment after ours miss the first.
   */
  #afterReconnect(): void {
    this.#heartbeat()
    for (const ms of [1000, 3000]) {
      if (ms >= this.heartbeatMs) break
      const t = setTimeout(() => {
        this.#reconnectBeats.delete(t)
        this.#heartbeat()
      }, ms)
      t.unref?.()
      this.#reconnectBeats.add(t)
    }
  }

  #heartbeat(): void {
    if (this.#closing !== undefined) return
    this.#publishOwn("nodes", {
      ...(this.zone === undefined ? {} : { zone: this.zone }),
      intervalMs: this.heartbeatMs,
      // the heartbeat's own seq is not a watermark anyone syncs on
      watermarks: Object.fromEntries([...this.#ownSeq].filter(([name]) => name !== "nodes")),
    })
  }

  #enqueue(foldName: string, msg: FoldBusMessage): void {
    if (this.#closing !== undefined) return
    const queued = this.#queue.length - this.#queueHead
    if (queued >= MAX_QUEUED || this.#queuedBytes >= MAX_QUEUED_BYTES) {
      // behind: a node we already know still gets in (its heartbeats keep it alive), up to a hard cap
      const origin = msg.subject.slice(msg.subject.lastIndexOf(".") + 1)
      if (queued >= 2 * MAX_QUEUED || this.#queuedBytes >= 2 * MAX_QUEUED_BYTES || this.nodes.watermarkOf(origin) === undefined) {
        this.#reject(foldName, "overload")
        return
      }
    }
    this.#queue.push({ fold: foldName, msg, at: this.#now() })
    this.#queuedBytes += msg.data.length
    if (this.#drainHandle === undefined) this.#scheduleDrain()
  }

  #scheduleDrain(): void {
    this.#drainHandle = setImmediate(() => this.#drain())
    // like the fold's timers: pending events alone do not keep a process alive
    this.#drainHandle.unref?.()
  }

  /** Folds queued events for at most SLICE_MS, then lets the event loop run before the next slice. */
  #drain(): void {
    this.#drainHandle = undefined
    const t0 = performance.now()
    let n = 0
    while (this.#queueHead < this.#queue.length && this.#closing === undefined) {
      const e = this.#queue[this.#queueHead]!
      this.#queue[this.#queueHead++] = undefined as never
      this.#queuedBytes -= e.msg.data.length
      try {
        this.#onEvent(e.fold, e.msg, e.at)
      } catch {
        // one bad event must not stop the queue (each is decoded at the boundary anyway)
      }
      if ((++n & 15) === 0 && performance.now() - t0 > SLICE_MS) break
    }
    if (this.#queueHead === this.#queue.length) {
      this.#queue.length = 0
      this.#queueHead = 0
    } else {
      if (this.#queueHead > 4096) {
        this.#queue.splice(0, this.#queueHead)
        this.#queueHead = 0
      }
      if (this.#closing === undefined) this.#scheduleDrain()
    }
  }

  /**
   * The local clock as far as what we have heard goes: events still queued arrived up to
   * the oldest one's age ago, and a heartbeat among them is not folded yet. Liveness and
   * silence are judged at this time, so a node whose own event loop is behind (a flood)
   * does not take its peers for dead.
   */
  #heardNow(): number {
    const now = this.#now()
    const oldest = this.#queue[this.#queueHead]
    return oldest === undefined ? now : Math.min(now, oldest.at)
  }

  /** Folds one event that arrived at `at` (its receive time: heartbeats count from then). */
  #onEvent(foldName: string, msg: FoldBusMessage, at: number): void {
    if (this.#closing !== undefined) return
    const fold = this.#folds.get(foldName)!
    const env = decodeOr(Envelope, parseJson(msg.data))
    if (env === undefined) {
      this.stats.malformed++
      this.#reject(foldName, "malformed")
      return
    }
    // the subject names the origin: an envelope claiming another is dropped
    if (msg.subject !== this.#subjects.event(foldName, env.origin)) {
      this.stats.malformed++
      this.#reject(foldName, "origin-mismatch")
      return
    }
    if (env.origin === this.node) return
    // an epoch is a start time in µs: one from the far future is made up (it would outrank
    // every real incarnation); nobody is asked about it
    if (env.epoch > (Date.now() + (this.#opts.maxEpochSkewMs ?? DEFAULT_MAX_EPOCH_SKEW_MS)) * 1000 + 1000) {
      this.#reject(foldName, "future-epoch")
      return
    }
    // a flood of made-up origins is refused before its payloads cost a decode
    if (!fold.admits(env.origin)) {
      this.#reject(foldName, "origin-cap")
      return
    }
    const data = decodeOr(fold.spec.data, env.data)
    if (data === undefined) {
      this.stats.malformed++
      this.#reject(foldName, "malformed")
      return
    }
    const r = fold.apply({ origin: env.origin, epoch: env.epoch, seq: env.seq, data, digest: fnv1a(msg.data) }, at)
    switch (r.kind) {
      case "applied":
        this.stats.applied++
        if (foldName === "nodes") this.#checkWatermarks(env.origin, env.epoch)
        return
      case "gap":
        this.stats.gaps++
        this.#sync(foldName, env.origin)
        return
      case "rejected":
        this.#reject(foldName, r.reason)
        // too many origins: nobody to ask; a seq or epoch claim, or two events at one seq: the
        // origin's own answer decides
        if (r.reason !== "origin-cap") this.#sync(foldName, env.origin)
        return
      case "stale-epoch":
        // another epoch than the one applied: the origin restarted, or someone publishes
        // under its name. Its own snapshot settles which (rate-limited)
        this.#reject(foldName, "stale-epoch")
        this.#sync(foldName, env.origin)
        return
      case "duplicate":
        // a replay. Events in flight during a sync arrive as replays too, so only where a
        // snapshot is one heartbeat (`replaces`) is it worth asking: a forged "next" seq
        // would otherwise keep a live node's real heartbeats out. Elsewhere a snapshot can be
        // millions of entries, and the next heartbeat's watermark says if anything is missing
        if (fold.spec.replaces === true) this.#sync(foldName, env.origin)
    }
  }

  /**
   * Whose state may go to make room for a new origin. Never ours. In `nodes`, a node whose
   * heartbeat we have not had for 10 of our intervals: not "live" by its own advertised
   * interval (a made-up one says an hour), and not the strict liveness timeout either, since
   * while a flood backs up our event loop real heartbeats arrive late. In every other fold,
   * only an origin with no heartbeat on record: a node in `nodes` keeps its facts until the
   * sweep forgets it, so a flood of made-up origins cannot push out a real node's holdings.
   */
  #evictable(foldName: string, origin: string): boolean {
    if (origin === this.node) return false
    if (foldName !== "nodes") return this.nodes.watermarkOf(origin) === undefined
    const silent = this.nodes.state.silentFor(origin, this.#heardNow())
    return silent === undefined || silent > 10 * this.heartbeatMs
  }

  #reject(foldName: string, reason: string): void {
    const byReason = (this.stats.rejected[foldName] ??= {})
    byReason[reason] = (byReason[reason] ?? 0) + 1
  }

  /** A heartbeat advertises the origin's seq per fold: sync any fold we are behind on. */
  #checkWatermarks(origin: string, epoch: number): void {
    const hb = this.nodes.state.heartbeatOf(origin)
    if (hb === undefined) return
    // our folds, not the heartbeat's keys: a made-up heartbeat may list any number of names
    for (const [name, fold] of this.#folds) {
      if (name === "nodes") continue
      const seq = hb.watermarks[name] ?? 0
      const mark = fold.watermarkOf(origin)
      if (mark === undefined) {
        if (seq > 0) this.#sync(name, origin)
        continue
      }
      // behind, a gap, another epoch (forged, or ours is stale), or facts under its name in a
      // fold it never published in (forged): its snapshot says what is real
      if (mark.epoch !== epoch || mark.seq < seq || fold.hasGap(origin) || (seq === 0 && mark.seq > 0) || this.#wasCut(name, origin)) {
        this.#sync(name, origin)
      }
    }
  }

  /**
   * True when entries of `origin` were dropped at a lower limit than it has now: its adverts
   * came before its heartbeat (the small quota applied), so its snapshot is fetched again.
   */
  #wasCut(foldName: string, origin: string): boolean {
    const state = foldName === "holders" ? this.holders.state : foldName === "heat" ? this.heat.state : undefined
    const at = state?.cappedAt(origin)
    return at !== undefined && at < (this.#limits[foldName]?.(origin) ?? 0)
  }

  /**
   * Fetches and restores `origin`'s snapshot of one fold; one at a time per (fold, origin),
   * at most one per heartbeat interval per (fold, origin) and backing off (doubling, up to
   * 30 s) while the origin does not answer, and at most 16 in flight: forged gaps, seqs and
   * epochs, and heartbeats of origins nobody serves, cannot make a storm of requests.
   */
  #sync(foldName: string, origin: string): void {
    const key = `${foldName}.${origin}`
    if (this.#inflight.has(key) || this.#closing !== undefined) return
    const now = Date.now()
    const gate = this.#syncGate.get(key)
    if ((gate !== undefined && now < gate.next) || this.#inflight.size >= MAX_SYNCS_IN_FLIGHT) {
      this.stats.syncsDeferred++
      return
    }
    const settle = (ok: boolean) => {
      this.#syncGate.delete(key)
      const backoff = ok ? this.heartbeatMs : Math.min(MAX_SYNC_BACKOFF_MS, Math.max(this.heartbeatMs, 2 * (gate?.backoff ?? this.heartbeatMs / 2)))
      this.#syncGate.set(key, { next: Date.now() + backoff, backoff })
    }
    const p = this.#fetchSnapshot(foldName, origin)
      .then(
        (ok) => {
          if (ok) this.stats.syncs++
          else this.stats.syncFailures++
          settle(ok)
        },
        () => {
          this.stats.syncFailures++
          settle(false)
        },
      )
      .finally(() => this.#inflight.delete(key))
    this.#inflight.set(key, p)
  }

  async #fetchSnapshot(foldName: string, origin: string): Promise<boolean> {
    const fold = this.#folds.get(foldName)!
    const timeoutMs = this.#opts.syncTimeoutMs ?? 2000
    const entries: unknown[] = []
    let first: { epoch: number; seq: number; id: string; pages: number } | undefined
    for (let page = 0; first === undefined || page < first.pages; page++) {
      const req = first === undefined ? { fold: foldName, page } : { fold: foldName, page, id: first.id }
      const reply = decodePage(await this.#bus.request(this.#subjects.sync(origin), jsonBytes(req), { timeoutMs }))
      if (this.#closing !== undefined) return false
      if (reply === undefined || "error" in reply.header) {
        if (reply === undefined) this.stats.malformed++
        return false
      }
      const h = reply.header
      if (h.fold !== foldName || h.origin !== origin || h.page !== page || (first !== undefined && h.id !== first.id)) {
        this.stats.malformed++
        return false
      }
      first ??= { epoch: h.epoch, seq: h.seq, id: h.id, pages: h.pages }
      const got = decodeEntries(fold.spec, reply.body)
      if (got === undefined) {
        this.stats.malformed++
        return false
      }
      for (const e of got) entries.push(e)
    }
    // the origin's own answer: authoritative over whatever events claimed under its name
    fold.restoreOrigin(origin, { epoch: first.epoch, seq: first.seq }, entries, this.#now(), true)
    return true
  }

  #onSyncRequest(msg: FoldBusMessage): void {
    if (this.#closing !== undefined) return
    const req = decodeOr(SyncRequest, parseJson(msg.data))
    if (req === undefined) {
      this.stats.malformed++
      msg.respond(encodePage({ error: "bad-request" }))
      return
    }
    const fold = this.#folds.get(req.fold)
    if (fold === undefined) {
      msg.respond(encodePage({ error: "unknown-fold" }))
      return
    }
    const now = this.#now()
    for (const [id, c] of this.#captures) if (c.expires < now) this.#captures.delete(id)
    let id = req.id
    let cap = id === undefined ? undefined : this.#captures.get(id)
    if (id === undefined && req.page === 0) {
      // capture once, so every page of this snapshot is at the same seq
      const snap = fold.snapshotOrigin(this.node, now)
      id = crypto.randomUUID()
      cap = { fold: req.fold, epoch: this.#epoch, seq: snap.seq, pages: paginate(fold.spec, snap.entries, PAGE_BODY_BYTES), expires: now + CAPTURE_TTL_MS }
      this.#captures.set(id, cap)
    }
    const body = cap?.pages[req.page]
    if (id === undefined || cap === undefined || cap.fold !== req.fold || body === undefined) {
      msg.respond(encodePage({ error: "expired" }))
      return
    }
    const pages = cap.pages.length
    msg.respond(encodePage({ fold: req.fold, origin: this.node, epoch: cap.epoch, seq: cap.seq, id, page: req.page, pages }, body))
    this.stats.pagesServed++
    if (req.page === pages - 1) this.#captures.delete(id)
  }

  /** Forgets nodes silent for longer than `forgetAfterMs` in every fold. */
  #sweep(): void {
    const wall = Date.now()
    // gates long expired say nothing any more (made-up origins come and go)
    for (const [key, g] of this.#syncGate) if (g.next + MAX_SYNC_BACKOFF_MS < wall) this.#syncGate.delete(key)
    const now = this.#now()
    const heard = this.#heardNow()
    const forgetAfter = this.#opts.forgetAfterMs ?? 20 * this.heartbeatMs
    for (const node of this.nodes.state.knownNodes()) {
      if (node === this.node) continue
      if ((this.nodes.state.silentFor(node, heard) ?? 0) > forgetAfter) {
        for (const fold of this.#folds.values()) fold.forget(node, now)
      }
    }
  }

  /**
   * Pings one live peer per tick, round robin, and folds the RTT in. Ticks alternate between
   * peers that have answered a ping and those that have not yet: made-up live nodes (which
   * answer nothing) cannot push real peers' RTTs out of the rotation.
   */
  #ping(): void {
    const all = this.liveNodes().filter((n) => n !== this.node)
    if (all.length === 0) return
    const tick = this.#pingCursor++
    const answered = all.filter((n) => this.nodes.state.rttOf(n) !== undefined)
    const mixed = answered.length > 0 && answered.length < all.length
    const peers = !mixed ? all : tick % 2 === 0 ? answered : all.filter((n) => this.nodes.state.rttOf(n) === undefined)
    const peer = peers[(mixed ? tick >> 1 : tick) % peers.length]!
    const t0 = performance.now()
    const p: Promise<void> = this.#bus
      .request(this.#subjects.ping(peer), new Uint8Array(0), { timeoutMs: this.heartbeatMs })
      .then(
        () => {
          if (this.#closing === undefined) this.nodes.state.recordRtt(peer, performance.now() - t0)
        },
        () => {
          // an unanswered ping is what liveness is for; nothing to record
        },
      )
      .finally(() => this.#pings.delete(p))
    this.#pings.add(p)
  }
}
