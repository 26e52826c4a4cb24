/**
 * Reusable chunk buffers for fetches whose bytes go straight to the store. A fresh 4 MiB
 * buffer costs ~1000 page faults to fill (measured: filling fresh memory runs at ~2 GB/s,
 * reused at ~20 GB/s); a few reused buffers remove that cost from the receive path.
 * Bounded in bytes, not only in count: chunks run up to 16 MiB, and a pool that kept the
 * largest buffers it ever saw would grow the node's memory with the blobs it has read.
 */
export class BufferPool {
  readonly #free: Uint8Array[] = []
  #freeBytes = 0

  constructor(
    /** Bytes of free buffers kept; more are left to the GC. */
    private readonly keepBytes: number,
    /** Makes a new zeroed buffer (e.g. page-aligned ones, which direct writes take as they are). */
    private readonly allocate: (length: number) => Uint8Array = (length) => new Uint8Array(length),
  ) {}

  /** A buffer of at least `length` bytes (sized up to the next MiB). */
  take(length: number): Uint8Array {
    let best = -1
    for (let i = 0; i < this.#free.length; i++) {
      const b = this.#free[i]!
      if (b.length >= length && (best < 0 || b.length < this.#free[best]!.length)) best = i
    }
    if (best >= 0) {
      const b = this.#free.splice(best, 1)[0]!
      this.#freeBytes -= b.length
      return b
    }
    return this.allocate(Math.ceil(length / (1 << 20)) * (1 << 20) || 1)
  }

  release(buffer: Uint8Array): void {
    if (this.#freeBytes + buffer.length > this.keepBytes) return
    this.#free.push(buffer)
    this.#freeBytes += buffer.length
  }

  /** Bytes held by free buffers. */
  get freeBytes(): number {
    return this.#freeBytes
  }
}
