import { loadAddon } from "./native-addon.ts"

interface MallocTune {
  hold(mmapThresholdBytes: number, trimThresholdBytes: number): boolean
  trim(): boolean
  discard(buffer: ArrayBuffer, offset: number, length: number): boolean
  adviseHugePages(buffer: ArrayBuffer): boolean
}

/** glibc's malloc knobs and madvise through our tiny addon (native/malloc-tune): Node exposes none. */
const native = loadAddon<MallocTune>("malloc-tune")

/**
 * Allocations up to this come from malloc's heap, not a fresh mmap each: every chunk copy
 * (≤ 16 MiB, TRANSFER_MAX_CHUNK_BYTES) a read hands out.
 */
const MMAP_THRESHOLD_BYTES = 32 << 20
/** Free memory the heap keeps while bytes move, instead of giving it back at once. */
const TRIM_THRESHOLD_BYTES = 512 << 20
/**
 * No bytes moved by any node of the process for about this long: the heap's free memory goes
 * back. Tens of seconds, not a few: trimming after 2 s of quiet gave back the heap between the bench's 1 GiB
 * transfers, and each one paid to fault it in again (fetchBlob's reader 2.76–3.19 CPU-s per
 * GiB against 2.36–2.41 with the memory held).
 */
export const QUIET_TRIM_MS = 30_000

/** Process-wide: whether malloc holds freed memory, and how often it was given back (metrics). */
export const allocatorStats = { tuned: false, trims: 0 }

/**
 * Sets malloc to hold freed memory (process-wide, once); false where it cannot (not glibc,
 * no addon).
 *
 * Why: moving bytes churns big buffers (socket reads, chunk copies handed to readers) that
 * the GC frees in batches. By default glibc gives the heap's free top back to the system as
 * soon as it exceeds 128 KiB (or twice the largest mmap it has freed), and maps buffers over
 * that size fresh each time; on this VM every page of such memory is faulted in again at
 * 2–3 CPU-s per GiB. Holding freed memory while transfers run took the reader from 2.57–2.99 to
 * 2.36–2.41 CPU-s per GiB for fetchBlob and from 4.15–4.28 to 2.69–2.83 for a streamed read
 * (bench/transfer, docs/PERFORMANCE.md); it is given back once the process goes quiet.
 */
export function tuneMalloc(): boolean {
  if (!allocatorStats.tuned && native) allocatorStats.tuned = native.hold(MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES)
  return allocatorStats.tuned
}

/**
 * Gives the memory under `bytes` (its whole pages) back to the system now; they read as zeros
 * when next touched. For buffers whose contents are garbage (an idle arena's free slices).
 * False where it cannot (no addon, not Linux).
 */
export function discardPages(bytes: Uint8Array): boolean {
  return native?.discard(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length) ?? false
}

/**
 * Asks for 2 MiB pages under `buffer` where transparent huge pages are on "madvise" (Debian's
 * default): touching 96 MiB of fresh memory page by page cost ~280 ms of CPU on this VM
 * (~11 µs a page), with huge pages 55–170 ms. False where it cannot.
 */
export function adviseHugePages(buffer: ArrayBuffer): boolean {
  return native?.adviseHugePages(buffer) ?? false
}

/** Watches a running total: true once when it stops moving after it moved. */
export class QuietWatch {
  #last: number | undefined
  #moved = false

  /** Moved since the last quiet. */
  get pending(): boolean {
    return this.#moved
  }

  quietened(total: number): boolean {
    const moved = total !== this.#last
    this.#last = total
    if (moved) {
      this.#moved = true
      return false
    }
    const quietened = this.#moved
    this.#moved = false
    return quietened
  }
}

const activities = new Set<() => number>()
const watch = new QuietWatch()
let ticker: ReturnType<typeof setInterval> | undefined

function trim(): void {
  if (native?.trim()) allocatorStats.trims++
}

/**
 * Tunes malloc (see `tuneMalloc`) and watches `bytesMoved` with every other registered
 * node's: when none moved for `quietMs` (the first registration's), the heap's free memory is
 * given back. Returns the unregister function. Closing the last node does not give memory back
 * at once: a process that opens another node soon (tests, CLIs, a node per bench run) would
 * fault it all in again; the watch goes on until the quiet trim, then stops.
 */
export function holdFreedMemoryWhileBusy(bytesMoved: () => number, quietMs = QUIET_TRIM_MS): () => void {
  if (!tuneMalloc()) return () => {}
  activities.add(bytesMoved)
  // a plain unref'd timer, not a fiber: it must never keep the process alive on its own
  ticker ??= setInterval(() => {
    let total = 0
    for (const a of activities) total += a()
    if (watch.quietened(total)) trim()
    if (activities.size === 0 && !watch.pending) {
      clearInterval(ticker)
      ticker = undefined
    }
  }, quietMs).unref()
  return () => {
    activities.delete(bytesMoved)
  }
}
