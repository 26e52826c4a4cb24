/**
 * Blame for holders that failed a read (silent, not listening, ERR, lying sizes, wrong bytes).
 * Anyone can advertise anything on an open server, so a holder that fails is tried last for a
 * while; one that keeps failing for longer and longer; one that serves us well is forgiven at
 * once. An honest node with one bad moment is back at the front after `baseMs`.
 */

/** First penalty (ms); each further failure within `forgetMs` doubles it, up to `maxMs`. */
export const DEFAULT_PENALTY_BASE_MS = 30_000
export const DEFAULT_PENALTY_MAX_MS = 10 * 60_000
/** Strikes older than this (since the last failure) are forgotten. */
export const DEFAULT_PENALTY_FORGET_MS = 30 * 60_000
/** Holders remembered at most; beyond, the oldest-blamed are dropped (a flood of made-up names). */
const MAX_TRACKED = 4096

interface Penalty {
  strikes: number
  until: number
  last: number
}

export class HolderPenalties {
  readonly #byHolder = new Map<string, Penalty>()

  constructor(
    readonly baseMs = DEFAULT_PENALTY_BASE_MS,
    readonly maxMs = DEFAULT_PENALTY_MAX_MS,
    readonly forgetMs = DEFAULT_PENALTY_FORGET_MS,
  ) {}

  /** Records a failure of `holder`; returns how long it is now avoided (ms). */
  blame(holder: string, now = Date.now()): number {
    const p = this.#byHolder.get(holder)
    const strikes = p !== undefined && now - p.last < this.forgetMs ? p.strikes + 1 : 1
    const ms = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(30, strikes - 1))
    // re-inserted: the map stays in order of last blame, oldest first
    this.#byHolder.delete(holder)
    this.#byHolder.set(holder, { strikes, until: Math.max(p?.until ?? 0, now + ms), last: now })
    if (this.#byHolder.size > MAX_TRACKED) this.#byHolder.delete(this.#byHolder.keys().next().value!)
    return ms
  }

  /** `holder` served a chunk that verified: its strikes are forgiven. */
  credit(holder: string): void {
    this.#byHolder.delete(holder)
  }

  /** True while `holder` is avoided. */
  isPenalized(holder: string, now = Date.now()): boolean {
    const p = this.#byHolder.get(holder)
    return p !== undefined && now < p.until
  }

  /** Consecutive failures remembered for `holder` (0: none). */
  strikesOf(holder: string, now = Date.now()): number {
    const p = this.#byHolder.get(holder)
    return p === undefined || now - p.last >= this.forgetMs ? 0 : p.strikes
  }

  /** Holders remembered (bounded). */
  get size(): number {
    return this.#byHolder.size
  }
}
