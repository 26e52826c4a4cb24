import type { BlobRef } from "../storage/format/blob-ref.ts"
import type { DirManifest } from "../storage/format/dir-manifest.ts"
import { throwIfAborted } from "../storage/format/errors.ts"
import { checkLimit, type TreeLimits } from "./tree-limits.ts"

/** What a directory's subtree expands to (its own entries included, itself excluded). */
export interface SubtreeStats {
  readonly entries: number
  readonly files: number
  readonly bytes: number
  /** Directories nested below it: 0 when it has no subdirectory. */
  readonly height: number
}

/**
 * A Map that forgets its least recently used keys once the weight of what it holds passes
 * `capacity` (each value weighs 1 unless `weigh` says otherwise).
 */
export class LruMap<K, V> {
  readonly #map = new Map<K, V>()
  #weight = 0
  constructor(
    readonly capacity: number,
    private readonly weigh: (value: V) => number = () => 1,
  ) {}

  get(key: K): V | undefined {
    const v = this.#map.get(key)
    if (v !== undefined) {
      // a Map iterates in insertion order: re-inserting makes the key the newest
      this.#map.delete(key)
      this.#map.set(key, v)
    }
    return v
  }

  /** Keeps `value` unless it alone weighs more than the capacity. */
  set(key: K, value: V): void {
    const old = this.#map.get(key)
    if (old !== undefined) {
      this.#map.delete(key)
      this.#weight -= this.weigh(old)
    }
    const w = this.weigh(value)
    if (w > this.capacity) return
    this.#map.set(key, value)
    this.#weight += w
    for (const [k, v] of this.#map) {
      if (this.#weight <= this.capacity) break
      this.#map.delete(k)
      this.#weight -= this.weigh(v)
    }
  }

  get size(): number {
    return this.#map.size
  }
}

/** Distinct directories whose stats are remembered during one check (~100 bytes each). */
export const STATS_MEMO_DIRS = 100_000

export interface TreeStatsOptions {
  signal?: AbortSignal
  /** The memo (tests pass a tiny one to exercise recomputation). */
  memo?: LruMap<string, SubtreeStats>
  /** Manifests loaded (recomputations included): what the check cost. */
  onLoad?: (ref: BlobRef) => void
}

/**
 * The expanded tree's entries, files, bytes and depth, computed over the DAG of distinct
 * directory manifests: a subdirectory named 100,000 times is loaded once and then costs a
 * memo lookup per name. Fails with TOO_LARGE (naming the limit) as soon as a running count
 * passes a limit, before the rest is loaded; a file's size is its ref's claimed size, so a
 * forged huge file is refused without fetching it.
 *
 * Memory: the memo (bounded LRU), plus one entry per distinct subdirectory of each manifest
 * on the current path (at most `maxDepth` of them). A forgotten subdirectory is recomputed;
 * that stays bounded because every manifest load is one occurrence of that directory in
 * the expansion, so loads never add up to more entries than the expanded tree has, and the
 * running total of loaded entries is held to `maxEntries`.
 */
export async function treeStats(
  root: BlobRef,
  load: (ref: BlobRef) => Promise<DirManifest>,
  limits: Required<TreeLimits>,
  options: TreeStatsOptions = {},
): Promise<SubtreeStats> {
  const memo = options.memo ?? new LruMap<string, SubtreeStats>(STATS_MEMO_DIRS)
  let loaded = 0
  async function visit(ref: BlobRef, depth: number): Promise<SubtreeStats> {
    const hit = memo.get(ref.hex)
    if (hit !== undefined) {
      checkLimit(limits, "maxDepth", depth + hit.height)
      return hit
    }
    checkLimit(limits, "maxDepth", depth)
    throwIfAborted(options.signal)
    const manifest = await load(ref)
    options.onLoad?.(ref)
    loaded += manifest.entries.length
    // loaded ≤ expanded entries (see above): past the limit, the tree is too
    checkLimit(limits, "maxEntries", loaded)
    let entries = manifest.entries.length
    let files = 0
    let bytes = 0
    let height = 0
    const dirs = new Map<string, { ref: BlobRef; times: number }>()
    for (const e of manifest.entries) {
      if (e.kind === "file") {
        files++
        bytes += e.ref.size
      } else if (e.kind === "dir") {
        const d = dirs.get(e.ref.hex)
        if (d) d.times++
        else dirs.set(e.ref.hex, { ref: e.ref, times: 1 })
      }
    }
    // this directory's own files first: a forged size fails before any subdirectory is loaded
    checkLimit(limits, "maxBytes", bytes)
    for (const { ref: child, times } of dirs.values()) {
      const s = await visit(child, depth + 1)
      // each term was checked against the limits below it, so a sum passes a limit by at most one term
      entries += times * s.entries
      files += times * s.files
      bytes += times * s.bytes
      height = Math.max(height, s.height + 1)
      checkLimit(limits, "maxEntries", entries)
      checkLimit(limits, "maxBytes", bytes)
    }
    const stats: SubtreeStats = { entries, files, bytes, height }
    memo.set(ref.hex, stats)
    return stats
  }
  return visit(root, 0)
}
