import { alignedBytes, isPageAligned } from "../storage/direct-write.ts"
import { adviseHugePages, discardPages } from "./allocator.ts"
import { BufferPool } from "./buffer-pool.ts"

/**
 * One node's receive arena: one read's or fetch's in-flight chunks (readAheadBytes, 64 MiB by
 * default, each rounded up to a MiB) fit; beyond it, e.g. with several reads at once, chunks
 * get fresh buffers (copied through staging to be written directly). Committed only as far
 * as it is touched.
 */
export const RECEIVE_ARENA_BYTES = 96 << 20

/** Idle arenas kept for the next node to open; more are given back at once. */
const MAX_IDLE_ARENAS = 2

/** An idle arena not lent again for this long gives its memory back (as malloc's quiet trim). */
export const IDLE_ARENA_MS = 30_000

/**
 * Process-wide counters (tests, metrics). `fallback`: arenas made without page-aligned memory
 * (no WebAssembly, or its Memory refused): ordinary memory, or none at all when even that could
 * not be had (every chunk then gets a fresh buffer).
 */
export const arenaStats = { created: 0, reused: 0, discarded: 0, fallback: 0 }

/** Makes an arena's memory: page-aligned where it can (see `alignedBytes`), with huge pages asked for. */
function allocateArena(length: number): Uint8Array {
  const bytes = alignedBytes(length)
  adviseHugePages(bytes.buffer as ArrayBuffer)
  return bytes
}

const idle: Array<{ pool: BufferPool; timer: ReturnType<typeof setTimeout> }> = []

/**
 * Lends a receive arena to a node that opens: one a closed node gave back (its memory already
 * mapped) or a new one. Give it back with {@link returnReceiveArena} when the node closes.
 *
 * Why lend: the first touch of fresh memory is the dearest thing a receiver does on this VM.
 * Faulting in an arena's 96 MiB page by page took ~280 ms of CPU, against ~4 ms to write the
 * same bytes once mapped: ~10 % of a 1 GiB fetch's receiver, paid again by every node a
 * process opened (tests, CLIs, the bench's node per run). A new arena asks for huge pages,
 * which makes that first touch 2–5× cheaper where the kernel has them.
 *
 * An arena that cannot be page-aligned is ordinary memory (its chunks are written through
 * staging or buffered); one that cannot be allocated at all is empty (every chunk a fresh
 * buffer): a node opens and moves bytes either way. Both count as `fallback`. `allocate` is
 * for tests.
 */
export function borrowReceiveArena(allocate: (length: number) => Uint8Array = allocateArena): BufferPool {
  const kept = idle.pop()
  if (kept !== undefined) {
    clearTimeout(kept.timer)
    arenaStats.reused++
    return kept.pool
  }
  arenaStats.created++
  let aligned = false
  let pool: BufferPool
  try {
    pool = new BufferPool(RECEIVE_ARENA_BYTES, (length) => {
      const bytes = allocate(length)
      aligned = isPageAligned(bytes)
      return bytes
    })
  } catch {
    pool = new BufferPool(0) // RangeError: not even ordinary memory for it; every chunk gets a fresh buffer
  }
  if (!aligned) arenaStats.fallback++
  return pool
}

/**
 * Takes back a closed node's arena for the next node to open. Slices still handed out (a
 * chunk write finishing after close) stay taken until released. After `idleMs` without being
 * lent again, or at once when enough arenas are idle, its free memory goes back to the system.
 */
export function returnReceiveArena(pool: BufferPool, idleMs = IDLE_ARENA_MS): void {
  if (idle.length >= MAX_IDLE_ARENAS) {
    discardFree(pool)
    return
  }
  const entry = {
    pool,
    timer: setTimeout(() => {
      const i = idle.indexOf(entry)
      if (i >= 0) idle.splice(i, 1)
      discardFree(pool)
    }, idleMs).unref(),
  }
  idle.push(entry)
}

/** Gives back the memory of `pool`'s free slices (dropped to the GC where the addon is missing). */
function discardFree(pool: BufferPool): void {
  for (const run of pool.freeRuns()) discardPages(run)
  arenaStats.discarded++
}
