import { freemem } from "node:os"

/** Default cache size: 1/16 of the memory free at open, between 16 MiB and 512 MiB. */
export function defaultCacheBytes(): number {
  return Math.max(16 << 20, Math.min(512 << 20, Math.floor(freemem() / 16)))
}

export interface CacheStats {
  hits: number
  misses: number
  evictions: number
  bytes: number
  entries: number
  /** Sum of milliseconds evicted entries spent in the cache (dwell time). */
  evictedDwellMs: number
}

interface Entry {
  bytes: Uint8Array
  heat: number
  since: number
}

/**
 * Verified chunk bytes kept in memory, bounded by bytes. Greedy LRU biased by heat: the
 * eviction victim is the coldest of the few least-recently-used entries, so a hot chunk
 * survives a scan of cold ones. Only verified bytes go in, so hits need no rehash.
 */
export class MemoryCache {
  readonly #map = new Map<string, Entry>() // insertion order = recency (re-inserted on hit)
  readonly #capacity: number
  readonly stats: CacheStats = { hits: 0, misses: 0, evictions: 0, bytes: 0, entries: 0, evictedDwellMs: 0 }
  static readonly SAMPLE = 8

  constructor(capacityBytes: number) {
    this.#capacity = Math.max(0, capacityBytes)
  }

  get capacity(): number {
    return this.#capacity
  }

  get(hex: string): Uint8Array | undefined {
    const e = this.#map.get(hex)
    if (e === undefined) {
      this.stats.misses++
      return undefined
    }
    this.stats.hits++
    e.heat++
    this.#map.delete(hex)
    this.#map.set(hex, e)
    return e.bytes
  }

  has(hex: string): boolean {
    return this.#map.has(hex)
  }

  /** Adds verified bytes; entries larger than a quarter of the cache are not kept. */
  set(hex: string, bytes: Uint8Array): void {
    if (bytes.length > this.#capacity / 4 || this.#map.has(hex)) return
    while (this.stats.bytes + bytes.length > this.#capacity && this.#map.size > 0) this.#evictOne()
    this.#map.set(hex, { bytes, heat: 1, since: Date.now() })
    this.stats.bytes += bytes.length
    this.stats.entries = this.#map.size
  }

  delete(hex: string): void {
    const e = this.#map.get(hex)
    if (e === undefined) return
    this.#map.delete(hex)
    this.stats.bytes -= e.bytes.length
    this.stats.entries = this.#map.size
  }

  /** Raises a chunk's heat from outside (e.g. the heat fold says it is read elsewhere). */
  warm(hex: string, by = 1): void {
    const e = this.#map.get(hex)
    if (e) e.heat += by
  }

  clear(): void {
    this.#map.clear()
    this.stats.bytes = 0
    this.stats.entries = 0
  }

  #evictOne(): void {
    let victim: string | undefined
    let coldest = Infinity
    let seen = 0
    for (const [hex, e] of this.#map) {
      if (e.heat < coldest) {
        coldest = e.heat
        victim = hex
      }
      if (++seen >= MemoryCache.SAMPLE) break
    }
    const e = this.#map.get(victim!)!
    // heat decays as entries are passed over, so old hot entries do not stay forever
    for (const [, other] of this.#map) {
      other.heat = Math.max(1, other.heat >> 1)
      if (--seen <= 0) break
    }
    this.stats.evictions++
    this.stats.evictedDwellMs += Date.now() - e.since
    this.delete(victim!)
  }
}
