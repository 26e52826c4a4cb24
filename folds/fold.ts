import * as Schema from "effect/Schema"

/**
 * The generic fold: `(state, event) → state` plus an initial state, with a per-origin
 * watermark so replays are no-ops and gaps are seen (DESIGN.md §4, STYLE.md D8).
 *
 * A node is the authority for its own facts, so a fold's state is a union of per-origin
 * contributions: snapshots and restores work one origin at a time (`snapshotOrigin` /
 * `restoreOrigin`), which is what a late joiner asks a peer for. Reducers are plain,
 * synchronous TypeScript: they run once per bus event.
 */

/** What the machinery tells the reducer about the event it is folding. */
export interface FoldMeta {
  /** The node whose fact this is. */
  readonly origin: string
  /** The origin's per-fold sequence number (1, 2, 3, …). */
  readonly seq: number
  /** Local clock at apply time (ms): reducers never read the clock themselves, so they stay pure. */
  readonly now: number
  /**
   * Most entries this origin may contribute (the machinery's cap, see `FoldOptions.entryLimit`):
   * a reducer keeps what the origin already has and drops additions past it. Undefined: no cap.
   */
  readonly limit?: number
}

/**
 * One event as the machinery sees it. `epoch` names the origin's incarnation: a node that
 * restarts begins again at seq 1 under a larger epoch, and the fold drops what it knew of
 * the old one instead of ignoring the new events as replays.
 */
export interface FoldEvent<D> {
  readonly origin: string
  readonly seq: number
  readonly epoch?: number
  readonly data: D
  /**
   * Optional fingerprint of the event as received (the materializer hashes the message
   * bytes). The fold remembers those of the last few events it applied per origin: a replay
   * of one of those seqs with another digest is a `conflict` (someone else published at that
   * seq), not a duplicate.
   */
  readonly digest?: number
}

/** Optional binary encoding of a page of snapshot entries (default: JSON + the entry Schema). */
export interface PageCodec<E> {
  encode(entries: ReadonlyArray<E>): Uint8Array
  /** Returns undefined when the bytes are malformed: the caller drops the page. */
  decode(bytes: Uint8Array): E[] | undefined
}

/**
 * Everything that makes a fold specific. `S` is the state (may be mutated in place and
 * returned), `D` the event payload, `E` one entry of an origin's snapshot.
 */
export interface FoldSpec<S, D, E> {
  /** Subject-safe name (`[A-Za-z0-9_-]+`): it appears in `<prefix>.fold.<name>.<origin>`. */
  readonly name: string
  /** Decodes an event payload at the trust boundary. */
  readonly data: Schema.Codec<D, unknown>
  /** Decodes one snapshot entry at the trust boundary (JSON pages). */
  readonly entry: Schema.Codec<E, unknown>
  /** Optional compact page encoding used instead of JSON (e.g. packed hashes). */
  readonly pageCodec?: PageCodec<E>
  /**
   * True when every event carries the origin's whole state (heartbeats): a gap then loses
   * nothing, so the event is applied and no snapshot is needed.
   */
  readonly replaces?: boolean
  initial(): S
  apply(state: S, data: D, meta: FoldMeta): S
  /** The origin's current contribution, as entries (its facts, compactly). */
  snapshotOrigin(state: S, origin: string, now: number): E[]
  /**
   * Replaces the origin's contribution with `entries` (an empty list forgets the origin).
   * `limit`, when given, is the most entries to keep (the rest are dropped).
   */
  restoreOrigin(state: S, origin: string, entries: ReadonlyArray<E>, now: number, limit?: number): S
}

/**
 * Limits a running fold puts on what peers can make it hold (the materializer sets them;
 * a fold created without options has none, as before). Events are unauthenticated on an
 * open server, so none of these may depend on the event being honest.
 */
export interface FoldOptions {
  /**
   * Most origins with state. A new origin past it evicts the least recently heard origin
   * that `evictable` allows (a scan of the oldest few), or is refused (`origin-cap`).
   */
  readonly maxOrigins?: number
  /** Whether an origin's state may be dropped to make room (default: any). */
  readonly evictable?: (origin: string) => boolean
  /**
   * When true, an event under another epoch than the one known is not applied (`new-epoch`,
   * or `stale-epoch` for an older one): only the origin's own snapshot (`restoreOrigin` with
   * `authoritative`) moves it to another epoch. A forged epoch then voids nothing.
   */
  readonly confirmEpochs?: boolean
  /** Largest step past the watermark an event may claim (default 65536): beyond it, `seq-jump`. */
  readonly maxSeqJump?: number
  /** Most entries one origin may contribute, asked per event and per restore (`FoldMeta.limit`). */
  readonly entryLimit?: (origin: string) => number
}

/** Why an event was refused outright (neither applied nor held back). */
export type RejectReason = "origin-cap" | "seq-jump" | "new-epoch" | "conflict"

/** The result of `Fold.apply`: applied, ignored as a replay, or held back behind a gap. */
export type ApplyResult =
  | { readonly kind: "applied" }
  | { readonly kind: "duplicate" }
  | { readonly kind: "stale-epoch" }
  | { readonly kind: "gap"; readonly origin: string; readonly expected: number; readonly got: number }
  | { readonly kind: "rejected"; readonly reason: RejectReason }

/** How far the fold has applied one origin. */
export interface Watermark {
  readonly epoch: number
  readonly seq: number
}

/** A whole-fold snapshot: every origin's watermark and entries. */
export interface FoldSnapshot<E> {
  readonly fold: string
  readonly origins: ReadonlyArray<{ readonly origin: string; readonly epoch: number; readonly seq: number; readonly entries: E[] }>
}

/** Events kept per origin while waiting for the snapshot that fills a gap. */
const MAX_PENDING_PER_ORIGIN = 1024
/** Default `maxSeqJump`: far more events than a live origin publishes between two heartbeats. */
export const DEFAULT_MAX_SEQ_JUMP = 65_536
/**
 * Origins looked at (oldest first) for one to evict: origins are kept in order of last
 * event, so when the oldest few are still wanted the rest are too (and a flood of refused
 * newcomers costs a few checks each, not a scan).
 */
const EVICT_SCAN = 8

const APPLIED: ApplyResult = { kind: "applied" }
const DUPLICATE: ApplyResult = { kind: "duplicate" }
const STALE: ApplyResult = { kind: "stale-epoch" }
const REJECTED = {
  "origin-cap": { kind: "rejected", reason: "origin-cap" },
  "seq-jump": { kind: "rejected", reason: "seq-jump" },
  "new-epoch": { kind: "rejected", reason: "new-epoch" },
  conflict: { kind: "rejected", reason: "conflict" },
} as const satisfies Record<RejectReason, ApplyResult>

/** Digests remembered per origin (of the last events applied). */
const DIGESTS_KEPT = 16

type Mark = { epoch: number; seq: number; pending?: Map<number, FoldEvent<unknown>>; digests?: Map<number, number> }

/**
 * A running fold: the spec's state plus per-origin watermarks. Events below the
 * watermark are no-ops; an event past `last + 1` is held back (bounded) and reported as a
 * gap, and is applied once the missing events or a snapshot arrive.
 */
export class Fold<S, D, E> {
  #state: S
  /** Per origin, least recently heard first (an origin is moved to the end when heard). */
  readonly #marks = new Map<string, Mark>()
  readonly #opts: FoldOptions
  readonly #maxJump: number

  constructor(
    readonly spec: FoldSpec<S, D, E>,
    opts: FoldOptions = {},
  ) {
    this.#state = spec.initial()
    this.#opts = opts
    this.#maxJump = opts.maxSeqJump ?? DEFAULT_MAX_SEQ_JUMP
  }

  /** The fold's name (from the spec). */
  get name(): string {
    return this.spec.name
  }

  /** The current state; read it through the spec's query methods. */
  get state(): S {
    return this.#state
  }

  /** Number of origins with a watermark (bounded by `maxOrigins`). */
  get origins(): number {
    return this.#marks.size
  }

  /** Folds one event (already decoded). `now` is the local clock, handed to the reducer. */
  apply(event: FoldEvent<D>, now = Date.now()): ApplyResult {
    const epoch = event.epoch ?? 0
    let mark = this.#marks.get(event.origin)
    if (mark !== undefined && epoch < mark.epoch) return STALE
    if (mark !== undefined && epoch > mark.epoch && this.#opts.confirmEpochs === true) return REJECTED["new-epoch"]
    if (mark === undefined && !this.#admit(event.origin, now)) return REJECTED["origin-cap"]
    if (mark === undefined || epoch > mark.epoch) {
      // a new incarnation: what we knew of the old one is void
      if (mark !== undefined) this.#state = this.spec.restoreOrigin(this.#state, event.origin, [], now)
      mark = { epoch, seq: 0 }
    } else if (event.seq > mark.seq + this.#maxJump) {
      // a claim no live origin makes: neither applied nor held (the origin's snapshot decides)
      return REJECTED["seq-jump"]
    }
    // heard now: the most recently heard origins are the last to be evicted
    this.#marks.delete(event.origin)
    this.#marks.set(event.origin, mark)
    if (event.seq <= mark.seq) {
      const applied = event.digest === undefined ? undefined : mark.digests?.get(event.seq)
      return applied !== undefined && applied !== event.digest ? REJECTED.conflict : DUPLICATE
    }
    if (event.seq > mark.seq + 1 && this.spec.replaces !== true) {
      const pending = (mark.pending ??= new Map())
      if (pending.size < MAX_PENDING_PER_ORIGIN || pending.has(event.seq)) pending.set(event.seq, event)
      return { kind: "gap", origin: event.origin, expected: mark.seq + 1, got: event.seq }
    }
    this.#applyNow(mark, event, now)
    this.#drain(mark, now)
    return APPLIED
  }

  /**
   * Whether an event of `origin` could be taken now (known, room, or an evictable origin
   * among the oldest): lets the caller refuse a flood before decoding its payloads.
   */
  admits(origin: string): boolean {
    const max = this.#opts.maxOrigins
    if (max === undefined || this.#marks.size < max || this.#marks.has(origin)) return true
    let looked = 0
    for (const old of this.#marks.keys()) {
      if (this.#opts.evictable?.(old) ?? true) return true
      if (++looked >= EVICT_SCAN) break
    }
    return false
  }

  /** Room for one more origin: true when under the cap or an evictable origin was dropped. */
  #admit(origin: string, now: number): boolean {
    const max = this.#opts.maxOrigins
    if (max === undefined || this.#marks.size < max) return true
    let looked = 0
    for (const old of this.#marks.keys()) {
      if (old !== origin && (this.#opts.evictable?.(old) ?? true)) {
        this.forget(old, now)
        return true
      }
      if (++looked >= EVICT_SCAN) break
    }
    return false
  }

  /** The origins this fold has seen, with how far each is applied. */
  watermarks(): Map<string, Watermark> {
    const out = new Map<string, Watermark>()
    for (const [origin, m] of this.#marks) out.set(origin, { epoch: m.epoch, seq: m.seq })
    return out
  }

  /** How far one origin is applied (undefined: never seen). */
  watermarkOf(origin: string): Watermark | undefined {
    const m = this.#marks.get(origin)
    return m === undefined ? undefined : { epoch: m.epoch, seq: m.seq }
  }

  /** True when `origin` has held-back events waiting on a gap. */
  hasGap(origin: string): boolean {
    return (this.#marks.get(origin)?.pending?.size ?? 0) > 0
  }

  /** One origin's contribution and watermark: what a peer answers a sync request with. */
  snapshotOrigin(origin: string, now = Date.now()): { epoch: number; seq: number; entries: E[] } {
    const m = this.#marks.get(origin)
    return { epoch: m?.epoch ?? 0, seq: m?.seq ?? 0, entries: this.spec.snapshotOrigin(this.#state, origin, now) }
  }

  /**
   * Replaces one origin's contribution with a snapshot taken at `(epoch, seq)`, then applies
   * any held-back events past it. A snapshot older than what is applied is ignored, unless
   * `authoritative`: the snapshot is the origin's own answer to our sync request, and what
   * the origin says about itself beats what unauthenticated events claimed. It then moves
   * the origin to its epoch (older or newer), to its seq when the fold replaces or when
   * events claimed more than `maxSeqJump` past it (a small lead is just events published
   * after the snapshot was taken), and drops held-back events that still do not follow on.
   */
  restoreOrigin(origin: string, at: Watermark, entries: ReadonlyArray<E>, now = Date.now(), authoritative = false): boolean {
    const m = this.#marks.get(origin)
    if (m !== undefined && !(authoritative && this.#overrides(m, at)) && (at.epoch < m.epoch || (at.epoch === m.epoch && at.seq < m.seq))) return false
    if (m === undefined && !this.#admit(origin, now)) return false
    const pending = m !== undefined && m.epoch === at.epoch ? m.pending : undefined
    this.#state = this.spec.restoreOrigin(this.#state, origin, entries, now, this.#opts.entryLimit?.(origin))
    const mark: Mark = { epoch: at.epoch, seq: at.seq }
    if (pending !== undefined) {
      for (const seq of pending.keys()) if (seq <= at.seq || seq > at.seq + this.#maxJump) pending.delete(seq)
      if (pending.size > 0) mark.pending = pending
    }
    this.#marks.delete(origin)
    this.#marks.set(origin, mark)
    this.#drain(mark, now)
    // what does not follow on now is not waited for: the origin's next heartbeat says if more is due
    if (authoritative) delete mark.pending
    return true
  }

  /** True when the origin's own snapshot at `at` must replace mark `m` though it looks older. */
  #overrides(m: Mark, at: Watermark): boolean {
    if (at.epoch !== m.epoch) return true
    return at.seq < m.seq && (this.spec.replaces === true || m.seq - at.seq > this.#maxJump)
  }

  /** Drops everything known of `origin` (a node gone for good). */
  forget(origin: string, now = Date.now()): void {
    if (!this.#marks.delete(origin)) return
    this.#state = this.spec.restoreOrigin(this.#state, origin, [], now)
  }

  /** The whole fold: every origin's watermark and entries. */
  snapshot(now = Date.now()): FoldSnapshot<E> {
    return {
      fold: this.spec.name,
      origins: [...this.#marks].map(([origin, m]) => ({
        origin,
        epoch: m.epoch,
        seq: m.seq,
        entries: this.spec.snapshotOrigin(this.#state, origin, now),
      })),
    }
  }

  /** Restores a whole-fold snapshot (typically into a fresh fold), origin by origin. */
  restore(snapshot: FoldSnapshot<E>, now = Date.now()): void {
    for (const o of snapshot.origins) this.restoreOrigin(o.origin, { epoch: o.epoch, seq: o.seq }, o.entries, now)
  }

  #applyNow(mark: Mark, event: FoldEvent<D>, now: number): void {
    const limit = this.#opts.entryLimit?.(event.origin)
    const meta: FoldMeta = limit === undefined ? { origin: event.origin, seq: event.seq, now } : { origin: event.origin, seq: event.seq, now, limit }
    this.#state = this.spec.apply(this.#state, event.data, meta)
    mark.seq = event.seq
    if (event.digest !== undefined) {
      const digests = (mark.digests ??= new Map())
      digests.set(event.seq, event.digest)
      if (digests.size > DIGESTS_KEPT) digests.delete(digests.keys().next().value!)
    }
  }

  #drain(mark: Mark, now: number): void {
    const pending = mark.pending
    if (pending === undefined) return
    for (let next = pending.get(mark.seq + 1); next !== undefined; next = pending.get(mark.seq + 1)) {
      pending.delete(next.seq)
      this.#applyNow(mark, next as FoldEvent<D>, now)
    }
    for (const seq of pending.keys()) if (seq <= mark.seq) pending.delete(seq)
    if (pending.size === 0) delete mark.pending
  }
}

/** A fold definition: its spec plus a factory for fresh instances. */
export interface FoldDefinition<S, D, E> {
  readonly spec: FoldSpec<S, D, E>
  readonly name: string
  create(opts?: FoldOptions): Fold<S, D, E>
}

const NAME_RE = /^[A-Za-z0-9_-]+$/

/**
 * Defines a fold, the public primitive: applications fold their own events (e.g.
 * `ArtifactReady` carrying BlobRefs) with the same watermark, gap and snapshot machinery
 * as Dataforts' own folds, and hand the definition to the materializer.
 *
 * @example
 * const artifacts = defineFold({
 *   name: "artifacts",
 *   data: Schema.Struct({ name: Schema.String, ref: Schema.String }),
 *   entry: Schema.Struct({ name: Schema.String, ref: Schema.String }),
 *   initial: () => new Map<string, Map<string, string>>(),
 *   apply: (s, d, { origin }) => { … return s },
 *   snapshotOrigin: (s, origin) => …,
 *   restoreOrigin: (s, origin, entries) => …,
 * })
 * const fold = artifacts.create()
 */
export function defineFold<S, D, E>(spec: FoldSpec<S, D, E>): FoldDefinition<S, D, E> {
  if (!NAME_RE.test(spec.name)) throw new TypeError(`fold name must match ${NAME_RE}`)
  return { spec, name: spec.name, create: (opts?: FoldOptions) => new Fold(spec, opts) }
}

/** A definition whose types are erased: what the materializer holds in one list. */
export type AnyFoldDefinition = FoldDefinition<any, any, any>
