import type { BlobRef } from "../storage/format/blob-ref.ts"
import type { DirManifest } from "../storage/format/dir-manifest.ts"
import { throwIfAborted } from "../storage/format/errors.ts"
import type { Mesh, ReadSources } from "./mesh.ts"

/** Manifests asked for in one batch. */
const PREFETCH_BATCH = 512
/** Directories queued ahead at most; past it, children are left to the reader. */
const PREFETCH_FRONTIER = 16_384
/** Distinct directories remembered as queued; past it, prefetching stops. */
const PREFETCH_SEEN = 100_000

export interface PrefetchOptions {
  signal?: AbortSignal
  sources?: ReadSources
  /** Entries decoded before prefetching stops (the tree's entry limit). */
  maxEntries: number
}

/**
 * Fetches a tree's directory manifests over the mesh ahead of a depth-first reader,
 * breadth-first and in batches (`mesh.ensureLocal`), so a real tree costs about one round
 * trip per level rather than one per directory. Each distinct directory is queued once.
 * Everything is bounded (frontier, memory of what was queued, entries decoded): past a
 * bound it just stops, and the reader fetches what it needs itself. It never fails: a
 * failed batch ends prefetching, and the reader meets the error where it reads.
 */
export class ManifestPrefetch {
  readonly #frontier: BlobRef[] = []
  #head = 0
  readonly #seen = new Set<string>()
  readonly #inflight = new Map<string, Promise<DirManifest>>()
  readonly #ctrl = new AbortController()
  readonly #done: Promise<void>
  #decoded = 0

  constructor(
    private readonly mesh: Pick<Mesh, "ensureLocal">,
    /** Reads and decodes a manifest (over the mesh when it is not here). */
    private readonly read: (ref: BlobRef, signal: AbortSignal) => Promise<DirManifest>,
    root: BlobRef,
    private readonly options: PrefetchOptions,
  ) {
    this.#frontier.push(root)
    this.#seen.add(root.hex)
    const signal = options.signal ? AbortSignal.any([options.signal, this.#ctrl.signal]) : this.#ctrl.signal
    this.#done = this.#run(signal).catch(() => {})
  }

  /**
   * The prefetcher's read of `ref` when it has one under way (fetched in its batch, then
   * decoded), so a reader shares it instead of fetching the manifest a second time. After
   * that the manifest is local, and a reader just reads it. It rejects when prefetching
   * stopped before the read was done: the reader then reads it itself.
   */
  take(ref: BlobRef): Promise<DirManifest> | undefined {
    return this.#inflight.get(ref.hex)
  }

  /** Stops prefetching; resolves when nothing of it is in flight. */
  async stop(): Promise<void> {
    this.#ctrl.abort()
    await this.#done
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && this.#head < this.#frontier.length) {
      const batch = this.#frontier.slice(this.#head, this.#head + PREFETCH_BATCH)
      this.#head += batch.length
      if (this.#head > PREFETCH_FRONTIER) {
        this.#frontier.splice(0, this.#head)
        this.#head = 0
      }
      const fetched = this.mesh.ensureLocal(batch, { signal, ...(this.options.sources ? { sources: this.options.sources } : {}) })
      // one read per ref, in turn once the batch is here (what it did not carry, e.g. a big
      // manifest, is fetched by the read): each is registered from now until it was used
      // here, so a reader asking meanwhile shares it, and one manifest is decoded at a time
      let previous: Promise<unknown> = fetched
      for (const r of batch) {
        const read = previous.then(() => {
          throwIfAborted(signal)
          return this.read(r, signal)
        })
        read.catch(() => {})
        this.#inflight.set(r.hex, read)
        previous = read
      }
      try {
        for (const r of batch) {
          if (signal.aborted) return
          const manifest = await this.#inflight.get(r.hex)!
          this.#inflight.delete(r.hex)
          this.#decoded += manifest.entries.length
          if (this.#decoded > this.options.maxEntries) return this.#ctrl.abort()
          for (const e of manifest.entries) {
            if (e.kind !== "dir" || this.#seen.has(e.ref.hex)) continue
            if (this.#seen.size >= PREFETCH_SEEN) return this.#ctrl.abort()
            if (this.#frontier.length - this.#head >= PREFETCH_FRONTIER) break
            this.#seen.add(e.ref.hex)
            this.#frontier.push(e.ref)
          }
        }
      } finally {
        for (const r of batch) this.#inflight.delete(r.hex)
      }
    }
  }
}
