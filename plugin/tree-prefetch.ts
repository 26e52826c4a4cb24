import type { BlobRef } from "../storage/format/blob-ref.ts"
import type { DirManifest } from "../storage/format/dir-manifest.ts"
import { AbortedError, throwIfAborted } from "../storage/format/errors.ts"
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

/** A promise settled from outside (Node 20 has no Promise.withResolvers). */
function deferred<T>(): { promise: Promise<T>; resolve(v: T | Promise<T>): void; reject(e: unknown): void } {
  let resolve!: (v: T | Promise<T>) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {})
  return { promise, resolve, reject }
}

/**
 * Fetches a tree's directory manifests over the mesh ahead of a depth-first reader,
 * breadth-first and in batches (`mesh.ensureLocal`), so a real tree costs about one round
 * trip per level rather than one per directory. Each distinct directory is queued once,
 * and a reader asking for a queued one waits for its batch rather than fetching it alone.
 * Everything is bounded (frontier, memory of what was queued, entries decoded): past a
 * bound it stops, what it queued rejects, and the reader fetches what it needs itself. A
 * failed batch ends prefetching the same way; the reader meets the error where it reads.
 */
export class ManifestPrefetch {
  readonly #frontier: BlobRef[] = []
  #head = 0
  readonly #seen = new Set<string>()
  /** Queued or being read: settles with the decoded manifest (dropped once used here). */
  readonly #reads = new Map<string, ReturnType<typeof deferred<DirManifest>>>()
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
    this.#enqueue(root)
    const signal = options.signal ? AbortSignal.any([options.signal, this.#ctrl.signal]) : this.#ctrl.signal
    this.#done = this.#run(signal)
      .catch(() => {})
      .finally(() => {
        // whatever is still queued will not be read here: its readers read it themselves
        for (const d of this.#reads.values()) d.reject(new AbortedError())
        this.#reads.clear()
      })
  }

  /**
   * The prefetcher's read of `ref` when it is queued or under way, so a reader shares it
   * instead of fetching the manifest alone. It rejects when prefetching stops first: the
   * reader then reads it itself (it is local once the prefetcher has used it).
   */
  take(ref: BlobRef): Promise<DirManifest> | undefined {
    return this.#reads.get(ref.hex)?.promise
  }

  /** Stops prefetching; resolves when nothing of it is in flight. */
  async stop(): Promise<void> {
    this.#ctrl.abort()
    await this.#done
  }

  #enqueue(ref: BlobRef): void {
    this.#seen.add(ref.hex)
    this.#frontier.push(ref)
    this.#reads.set(ref.hex, deferred<DirManifest>())
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
      // manifest, is fetched by the read), so one manifest is decoded at a time
      let previous: Promise<unknown> = fetched
      for (const r of batch) {
        const read = previous.then(() => {
          throwIfAborted(signal)
          return this.read(r, signal)
        })
        read.catch(() => {})
        this.#reads.get(r.hex)?.resolve(read)
        previous = read
      }
      for (const r of batch) {
        if (signal.aborted) return
        const manifest = await this.#reads.get(r.hex)!.promise
        this.#reads.delete(r.hex)
        this.#decoded += manifest.entries.length
        if (this.#decoded > this.options.maxEntries) return this.#ctrl.abort()
        for (const e of manifest.entries) {
          if (e.kind !== "dir" || this.#seen.has(e.ref.hex)) continue
          if (this.#seen.size >= PREFETCH_SEEN) return this.#ctrl.abort()
          if (this.#frontier.length - this.#head >= PREFETCH_FRONTIER) break
          this.#enqueue(e.ref)
        }
      }
    }
  }
}
