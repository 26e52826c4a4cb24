import * as Schema from "effect/Schema"
import { defineFold, type FoldDefinition } from "./fold.ts"
import { HashHex } from "./holders.ts"

/**
 * `heat`: per-blob, per-node read counts, exponentially decayed with a half-life, so
 * placement and the cache see what is hot *now*. Each node publishes its own read deltas.
 *
 * Decay is lazy: a score is stored scaled to a reference time `t0`
 * (`stored = reads · 2^((t − t0)/halfLife)`), so adding a read is one multiply and nothing
 * is touched per tick; `decay(now)` rebases `t0` now and then to keep the numbers finite
 * and drops what has gone cold.
 */

/** Default half-life of a read: 10 minutes. */
export const DEFAULT_HEAT_HALF_LIFE_MS = 10 * 60_000

/** Heat below this is forgotten by `decay`. */
const COLD = 1e-3

/** One `heat` event: `[hash, reads]` pairs the origin served or consumed since its last event. */
export const HeatDelta = Schema.Struct({
  reads: Schema.Array(Schema.Tuple([HashHex, Schema.Finite.check(Schema.isGreaterThan(0))])),
})
/** Decoded `heat` event payload. */
export type HeatDelta = typeof HeatDelta.Type

/** One entry of an origin's heat snapshot: its decayed heat of one hash at snapshot time. */
export const HeatEntry = Schema.Tuple([HashHex, Schema.Finite.check(Schema.isGreaterThan(0))])
/** Decoded heat snapshot entry. */
export type HeatEntry = typeof HeatEntry.Type

/** The state of the `heat` fold, with its queries. */
export class HeatIndex {
  #t0: number | undefined
  readonly #byOrigin = new Map<string, Map<string, number>>()
  readonly #total = new Map<string, number>()
  /** Reads dropped because their origin was at its cap of distinct hashes. */
  capped = 0
  /** Per origin, the largest limit a read of it was dropped at since it was last cleared. */
  readonly #cappedAt = new Map<string, number>()

  constructor(readonly halfLifeMs = DEFAULT_HEAT_HALF_LIFE_MS) {}

  /** Scale factor from "heat at `now`" to stored units. */
  #up(now: number): number {
    this.#t0 ??= now
    return 2 ** ((now - this.#t0) / this.halfLifeMs)
  }

  /**
   * Adds `reads` reads of `hashHex` by `origin` at `now`. A hash new to an origin that
   * already has `limit` hashes is dropped (counted in `capped`).
   */
  add(origin: string, hashHex: string, reads: number, now: number, limit = Number.POSITIVE_INFINITY): void {
    const known = this.#byOrigin.get(origin)
    if ((known?.size ?? 0) >= limit && known?.has(hashHex) !== true) {
      this.capped++
      this.#cappedAt.set(origin, Math.max(this.#cappedAt.get(origin) ?? 0, limit))
      return
    }
    // keep stored scores finite even when nobody called decay() for a long time
    if (this.#t0 !== undefined && (now - this.#t0) / this.halfLifeMs > 256) this.decay(now)
    const v = reads * this.#up(now)
    let mine = this.#byOrigin.get(origin)
    if (mine === undefined) this.#byOrigin.set(origin, (mine = new Map()))
    mine.set(hashHex, (mine.get(hashHex) ?? 0) + v)
    this.#total.set(hashHex, (this.#total.get(hashHex) ?? 0) + v)
  }

  /** Decayed heat of `hashHex` across all nodes at `now` (0 when never read). */
  heatOf(hashHex: string, now = Date.now()): number {
    const s = this.#total.get(hashHex)
    return s === undefined ? 0 : s / this.#up(now)
  }

  /** Decayed heat of `hashHex` from one node's reads. */
  heatOfBy(hashHex: string, origin: string, now = Date.now()): number {
    const s = this.#byOrigin.get(origin)?.get(hashHex)
    return s === undefined ? 0 : s / this.#up(now)
  }

  /** The `n` hottest hashes at `now`, hottest first (ties by hash, so the order is stable). */
  topN(n: number, now = Date.now()): Array<{ hash: string; heat: number }> {
    const down = this.#up(now)
    return [...this.#total]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, Math.max(0, n))
      .map(([hash, s]) => ({ hash, heat: s / down }))
  }

  /** Rebases stored scores to `now` and forgets what is colder than 0.001 reads. */
  decay(now: number): void {
    const f = 1 / this.#up(now)
    this.#t0 = now
    for (const [origin, mine] of this.#byOrigin) {
      for (const [h, s] of mine) {
        const v = s * f
        if (v < COLD) mine.delete(h)
        else mine.set(h, v)
      }
      if (mine.size === 0) this.#byOrigin.delete(origin)
    }
    for (const [h, s] of this.#total) {
      const v = s * f
      if (v < COLD) this.#total.delete(h)
      else this.#total.set(h, v)
    }
  }

  /** `origin`'s own decayed heats at `now`. */
  entriesOf(origin: string, now: number): HeatEntry[] {
    const mine = this.#byOrigin.get(origin)
    if (mine === undefined) return []
    const down = this.#up(now)
    return [...mine].map(([h, s]) => [h, s / down] as const)
  }

  /** The largest limit a read of `origin` was dropped at since it was last cleared. */
  cappedAt(origin: string): number | undefined {
    return this.#cappedAt.get(origin)
  }

  /** Forgets `origin`'s reads (subtracting them from the totals). */
  clear(origin: string): void {
    this.#cappedAt.delete(origin)
    const mine = this.#byOrigin.get(origin)
    if (mine === undefined) return
    this.#byOrigin.delete(origin)
    for (const [h, s] of mine) {
      const v = (this.#total.get(h) ?? 0) - s
      // float residue of the subtraction is not heat
      if (v <= COLD * 1e-6) this.#total.delete(h)
      else this.#total.set(h, v)
    }
  }
}

/** Builds the `heat` fold definition with a half-life (name `heat`). */
export function heatFold(halfLifeMs = DEFAULT_HEAT_HALF_LIFE_MS): FoldDefinition<HeatIndex, HeatDelta, HeatEntry> {
  return defineFold({
    name: "heat",
    data: HeatDelta,
    entry: HeatEntry,
    initial: () => new HeatIndex(halfLifeMs),
    apply(state, data, { origin, now, limit }) {
      for (const [h, n] of data.reads) state.add(origin, h, n, now, limit)
      return state
    },
    snapshotOrigin: (state, origin, now) => state.entriesOf(origin, now),
    restoreOrigin(state, origin, entries, now, limit) {
      state.clear(origin)
      for (const [h, v] of entries) state.add(origin, h, v, now, limit)
      return state
    },
  })
}
