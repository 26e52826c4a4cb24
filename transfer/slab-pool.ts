/**
 * Reuse of the holder's frame slabs. Every ArrayBuffer a process allocates counts as V8
 * "external memory", and each ~64 MiB of it starts a full mark-compact: a holder allocating
 * a fresh slab per read window paid ~40 major GCs per GiB served (measured, bench/transfer).
 *
 * A slab may be reused only once nats.js no longer references its frames: `publish` queues
 * the frame views and copies them into the socket write at its next flush, and while the
 * connection is down it keeps them queued. So a finished slab is *retired* first and only
 * becomes free when the caller has seen the client's outbound queue empty.
 */
export class SlabPool {
  readonly #free: Uint8Array[] = []
  readonly #retired: Uint8Array[] = []

  constructor(
    /** Bytes of every pooled slab (one full read window laid out as frames). */
    readonly slabBytes: number,
    /** Free slabs kept; more are left to the GC. */
    readonly keep: number,
  ) {}

  /** A slab of `slabBytes` (pooled when one is free). */
  take(): Uint8Array {
    return this.#free.pop() ?? new Uint8Array(this.slabBytes)
  }

  /** A slab whose frames were published: reusable after the outbound queue has drained. */
  retire(slab: Uint8Array): void {
    if (slab.byteLength === this.slabBytes && this.#retired.length < this.keep) this.#retired.push(slab)
  }

  /** Call with true only when nothing queued in the client refers to retired slabs. */
  recycle(outboundEmpty: boolean): void {
    if (!outboundEmpty || this.#retired.length === 0) return
    while (this.#retired.length > 0) {
      const slab = this.#retired.pop()!
      if (this.#free.length < this.keep) this.#free.push(slab)
    }
  }

  /** Free and retired slabs (for tests and stats). */
  get size(): { free: number; retired: number } {
    return { free: this.#free.length, retired: this.#retired.length }
  }
}
