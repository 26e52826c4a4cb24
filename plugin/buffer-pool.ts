const MIB = 1 << 20

/**
 * Reusable chunk buffers for fetches whose bytes go straight to the store: slices of ONE
 * arena, handed out in whole MiB by first fit and given back on release.
 *
 * Why an arena: a fresh 4 MiB buffer costs ~1000 page faults to fill (fresh memory fills at
 * ~2 GB/s here, reused at ~20 GB/s), and a pool of separate buffers churns whenever chunk
 * sizes (1–16 MiB) do not match what it keeps: the buffers it drops live until the next
 * mark-compact, so the node's RSS grew with the size of the blob being read (4 GiB / 512 MiB:
 * up to 1.22, bench/transfer). The arena's memory is bounded and reused whatever the sizes;
 * it is committed only as far as it is ever touched. When it is full, a fresh buffer is made
 * (and left to the GC on release).
 */
export class BufferPool {
  readonly #arena: Uint8Array
  /** One flag per MiB of the arena: 1 = in use. */
  readonly #used: Uint8Array
  #freeBytes: number

  constructor(
    /** Arena bytes (rounded down to whole MiB). */
    capacityBytes: number,
    /** Makes the arena (e.g. page-aligned, which direct writes take as it is). */
    allocate: (length: number) => Uint8Array = (length) => new Uint8Array(length),
  ) {
    const units = Math.max(0, Math.floor(capacityBytes / MIB))
    this.#arena = allocate(units * MIB)
    this.#used = new Uint8Array(units)
    this.#freeBytes = units * MIB
  }

  /** A buffer of at least `length` bytes: an arena slice of whole MiB when a run is free. */
  take(length: number): Uint8Array {
    const units = Math.max(1, Math.ceil(length / MIB))
    const used = this.#used
    let run = 0
    for (let i = 0; i < used.length; i++) {
      run = used[i] === 0 ? run + 1 : 0
      if (run === units) {
        const first = i - units + 1
        used.fill(1, first, i + 1)
        this.#freeBytes -= units * MIB
        return this.#arena.subarray(first * MIB, (i + 1) * MIB)
      }
    }
    return new Uint8Array(units * MIB)
  }

  /** Gives an arena slice back; any other buffer is left to the GC. */
  release(buffer: Uint8Array): void {
    if (buffer.buffer !== this.#arena.buffer) return
    const first = (buffer.byteOffset - this.#arena.byteOffset) / MIB
    const units = buffer.length / MIB
    this.#used.fill(0, first, first + units)
    this.#freeBytes += units * MIB
  }

  /** Views of the arena's free runs (maximal runs of free MiB), e.g. to give their memory back. */
  freeRuns(): Uint8Array[] {
    const runs: Uint8Array[] = []
    const used = this.#used
    let start = -1
    for (let i = 0; i <= used.length; i++) {
      const free = i < used.length && used[i] === 0
      if (free && start < 0) start = i
      else if (!free && start >= 0) {
        runs.push(this.#arena.subarray(start * MIB, i * MIB))
        start = -1
      }
    }
    return runs
  }

  /** Arena bytes not handed out. */
  get freeBytes(): number {
    return this.#freeBytes
  }
}

/**
 * A copy of `bytes` in memory of its own, for a caller to keep: not zeroed first (every byte
 * is overwritten), which `slice()` does (calloc): 2.5 % of a streaming reader's CPU in the
 * profile. A plain Uint8Array of exactly `bytes.length`.
 */
export function ownedCopy(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Buffer.allocUnsafeSlow(bytes.length).buffer, 0, bytes.length)
  out.set(bytes)
  return out
}
