import type { BlobKind } from "./format/blob-ref.ts"

/** What a node knows about one blob it holds. */
export interface BlobMeta {
  readonly kind: BlobKind
  readonly size: number
  readonly tags: Readonly<Record<string, string>>
  /** Milliseconds since the epoch. */
  readonly created: number
  lastRead: number
  /** Number of chunks (1 for a chunk blob). */
  readonly chunks: number
}

/**
 * The metadata index of one node: blob records, manifests and chunk reference counts.
 * Every mutation that makes a blob visible or invisible is one atomic batch, so a crash
 * leaves either the old or the new state. Callers serialize mutations (LocalStore holds a
 * lock); reads may run concurrently.
 */
export interface BlobIndex {
  getMeta(hex: string): Promise<BlobMeta | undefined>
  getManifest(hex: string): Promise<Uint8Array | undefined>
  /** Reference counts of the given chunks (0 when unknown). */
  refcounts(hexes: readonly string[]): Promise<number[]>
  /**
   * Makes a blob visible: its record, its manifest (if any) and +1 on each distinct
   * chunk, in one batch. The caller has checked the blob was not already present.
   */
  commit(hex: string, meta: BlobMeta, manifest: Uint8Array | undefined, chunks: readonly string[]): Promise<void>
  /** Several commits in one batch (group commit); none of the blobs may be present yet. */
  commitMany(items: readonly BlobCommit[]): Promise<void>
  /** Updates tags of an existing blob (a second put with new tags merges them). */
  setMeta(hex: string, meta: BlobMeta): Promise<void>
  /** Records last-read times of several blobs in one write (absent blobs are skipped). */
  touchMany(times: ReadonlyMap<string, number>): Promise<void>
  /** True when `commitMany` can carry small chunks inline (`BlobCommit.inline`). */
  readonly inlinesChunks: boolean
  /** Removes a blob in one batch; returns the chunks whose count reached zero. */
  remove(hex: string, chunks: readonly string[]): Promise<string[]>
  entries(): AsyncIterable<[string, BlobMeta]>
  /** A durable marker that the store is open; `wasDirty` tells the next open a crash happened. */
  markOpen(): Promise<boolean>
  markClean(): Promise<void>
  sync(): Promise<void>
  close(): Promise<void>
}

export interface BlobCommit {
  readonly hex: string
  readonly meta: BlobMeta
  readonly manifest: Uint8Array | undefined
  readonly chunks: readonly string[]
  /** A small chunk's bytes written in the same batch (indexes that keep small chunks). */
  readonly inline?: { readonly hex: string; readonly bytes: Uint8Array }
}

/** Index held in Maps, for `Blobs.open({ memory: true })`. */
export class MemoryBlobIndex implements BlobIndex {
  readonly #meta = new Map<string, BlobMeta>()
  readonly #manifests = new Map<string, Uint8Array>()
  readonly #refs = new Map<string, number>()

  async getMeta(hex: string) {
    return this.#meta.get(hex)
  }
  async getManifest(hex: string) {
    return this.#manifests.get(hex)
  }
  async refcounts(hexes: readonly string[]) {
    return hexes.map((h) => this.#refs.get(h) ?? 0)
  }
  async commit(hex: string, meta: BlobMeta, manifest: Uint8Array | undefined, chunks: readonly string[]) {
    this.#meta.set(hex, { ...meta })
    if (manifest) this.#manifests.set(hex, manifest)
    for (const c of new Set(chunks)) this.#refs.set(c, (this.#refs.get(c) ?? 0) + 1)
  }
  readonly inlinesChunks = false
  async commitMany(items: readonly BlobCommit[]) {
    for (const i of items) await this.commit(i.hex, i.meta, i.manifest, i.chunks)
  }
  async touchMany(times: ReadonlyMap<string, number>) {
    for (const [hex, t] of times) {
      const m = this.#meta.get(hex)
      if (m) m.lastRead = t
    }
  }
  async setMeta(hex: string, meta: BlobMeta) {
    this.#meta.set(hex, { ...meta })
  }
  async remove(hex: string, chunks: readonly string[]) {
    if (!this.#meta.delete(hex)) return []
    this.#manifests.delete(hex)
    const freed: string[] = []
    for (const c of new Set(chunks)) {
      const n = (this.#refs.get(c) ?? 0) - 1
      if (n <= 0) {
        this.#refs.delete(c)
        freed.push(c)
      } else this.#refs.set(c, n)
    }
    return freed
  }
  async *entries() {
    yield* [...this.#meta.entries()]
  }
  async markOpen() {
    return false
  }
  async markClean() {}
  async sync() {}
  async close() {}
}
