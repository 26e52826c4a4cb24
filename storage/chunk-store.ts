/**
 * Where chunk bytes live on one node, addressed by lower-case hex BLAKE3. Implementations
 * store and return raw bytes; verification is the caller's job (LocalStore verifies every
 * read from a backend before anything leaves it). Writes are atomic: a chunk is either
 * wholly present under its name or absent.
 */
export interface ChunkStore {
  /** `length`, when known, lets a tiered store look in one place only. */
  has(hex: string, length?: number): Promise<boolean>
  /** Raw bytes, or undefined when absent. */
  read(hex: string, length?: number): Promise<Uint8Array | undefined>
  /** Length of the stored chunk, or undefined when absent. */
  lengthOf(hex: string): Promise<number | undefined>
  /** Opens a chunk for reading in windows (serving peers without loading a whole chunk). */
  openRange(hex: string): Promise<RangeReader | undefined>
  /** Writes atomically (tmp → optional fsync → rename). A no-op (false) when already present. */
  write(hex: string, bytes: Uint8Array, options?: ChunkWriteOptions): Promise<boolean>
  remove(hex: string): Promise<void>
  /** Every stored chunk name (used by the orphan sweep). */
  list(): AsyncIterable<string>
  /** Makes every write so far durable (fsync files and directories). */
  sync(): Promise<void>
  /** Bytes currently stored. */
  bytes(): Promise<number>
  close(): Promise<void>
}

export interface ChunkWriteOptions {
  /**
   * A hint that the bytes will not be read back soon (a chunk that arrived from a peer): a
   * file store may write them around the page cache. Stores without one ignore it.
   */
  readonly bypassPageCache?: boolean
}

/** Random access to one stored chunk; close it when done. */
export interface RangeReader {
  readonly length: number
  /** Up to `length` bytes at `offset` (fewer only at the end of the chunk). */
  read(offset: number, length: number): Promise<Uint8Array>
  /**
   * Fills `targets` in order with the bytes from `offset` on (a scatter read: one syscall
   * for a file, so a holder lays bytes straight into its frames). Returns the bytes read,
   * fewer only at the end of the chunk.
   */
  readInto(offset: number, targets: readonly Uint8Array[]): Promise<number>
  close(): Promise<void>
}

/** A RangeReader over bytes already in memory. */
export function bytesReader(bytes: Uint8Array): RangeReader {
  return {
    length: bytes.length,
    read: async (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length)),
    readInto: async (offset, targets) => {
      let at = offset
      for (const t of targets) {
        const n = Math.max(0, Math.min(t.length, bytes.length - at))
        t.set(bytes.subarray(at, at + n))
        at += n
        if (n < t.length) break
      }
      return at - offset
    },
    close: async () => {},
  }
}

/** In-memory chunk storage (`Blobs.open({ memory: true })`). */
export class MemoryChunkStore implements ChunkStore {
  readonly #map = new Map<string, Uint8Array>()
  async has(hex: string) {
    return this.#map.has(hex)
  }
  async read(hex: string) {
    return this.#map.get(hex)
  }
  async lengthOf(hex: string) {
    return this.#map.get(hex)?.length
  }
  async openRange(hex: string) {
    const b = this.#map.get(hex)
    return b === undefined ? undefined : bytesReader(b)
  }
  async write(hex: string, bytes: Uint8Array) {
    if (this.#map.has(hex)) return false
    // copy: a stored chunk must not change if the caller reuses its buffer
    this.#map.set(hex, bytes.slice())
    return true
  }
  async remove(hex: string) {
    this.#map.delete(hex)
  }
  async *list() {
    yield* [...this.#map.keys()]
  }
  async sync() {}
  async bytes() {
    let n = 0
    for (const b of this.#map.values()) n += b.length
    return n
  }
  async close() {}
}
