/**
 * Reuse of the holder's frame slabs. Every ArrayBuffer a process allocates counts as V8
 * "external memory", and each ~64 MiB of it starts a full mark-compact: a holder allocating
 * a fresh slab per read window paid ~40 major GCs per GiB served (measured, bench/transfer).
 *
 * A slab may be reused only once nothing outside refers to it. Two things may: nats.js, whose
 * `publish` queues frame views until its next flush (and keeps them queued while the
 * connection is down), and the socket, which holds a slab slice written to it until the write
 * completes (`lend` … `settled`). So a finished slab is *retired* first and only becomes free
 * when the caller has seen the client's outbound queue empty and no write of it is pending.
 */
export class SlabPool {
  readonly #free: Uint8Array[] = []
  readonly #retired: Uint8Array[] = []
  /** Socket writes not yet completed, per slab. */
  readonly #writing = new Map<Uint8Array, number>()

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

  /** A slice of `slab` was handed to the socket; call {@link settled} when that write is done. */
  lend(slab: Uint8Array): void {
    this.#writing.set(slab, (this.#writing.get(slab) ?? 0) + 1)
  }

  settled(slab: Uint8Array): void {
    const n = (this.#writing.get(slab) ?? 1) - 1
    if (n > 0) this.#writing.set(slab, n)
    else this.#writing.delete(slab)
  }

  /** A slab whose frames were sent: reusable once the client and the socket are done with it. */
  retire(slab: Uint8Array): void {
    if (slab.byteLength === this.slabBytes && this.#retired.length < this.keep) this.#retired.push(slab)
  }

  /** Call with true only when nothing queued in the client refers to retired slabs. */
  recycle(outboundEmpty: boolean): void {
    if (!outboundEmpty || this.#retired.length === 0) return
    for (let i = this.#retired.length - 1; i >= 0; i--) {
      const slab = this.#retired[i]!
      if (this.#writing.has(slab)) continue
      this.#retired.splice(i, 1)
      if (this.#free.length < this.keep) this.#free.push(slab)
    }
  }

  /** Free and retired slabs, and slabs with socket writes pending (for tests and stats). */
  get size(): { free: number; retired: number; writing: number } {
    return { free: this.#free.length, retired: this.#retired.length, writing: this.#writing.size }
  }
}
