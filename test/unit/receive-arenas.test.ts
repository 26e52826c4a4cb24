import { afterEach, describe, expect, it, vi } from "vitest"
import { arenaStats, borrowReceiveArena, IDLE_ARENA_MS, RECEIVE_ARENA_BYTES, returnReceiveArena } from "../../plugin/receive-arenas.ts"

const MIB = 1 << 20

afterEach(() => {
  vi.useRealTimers()
})

describe("receive arenas lent process-wide", () => {
  it("lends a closed node's arena to the next node that opens, and a new one to a node opening beside it", () => {
    vi.useFakeTimers()
    const first = borrowReceiveArena()
    const beside = borrowReceiveArena()
    expect(beside).not.toBe(first)
    expect(first.freeBytes).toBe(RECEIVE_ARENA_BYTES)
    returnReceiveArena(first)
    const reused = arenaStats.reused
    const next = borrowReceiveArena()
    expect(next).toBe(first)
    expect(arenaStats.reused).toBe(reused + 1)
    returnReceiveArena(next)
    returnReceiveArena(beside)
    vi.advanceTimersByTime(IDLE_ARENA_MS)
  })

  it("gives an idle arena's free memory back after the idle time, and leaves slices still handed out alone", () => {
    vi.useFakeTimers()
    const pool = borrowReceiveArena()
    const stillWriting = pool.take(MIB).fill(7)
    const free = pool.take(2 * MIB).fill(9)
    pool.release(free)
    returnReceiveArena(pool)
    vi.advanceTimersByTime(IDLE_ARENA_MS - 1)
    expect(free[0]).toBe(9) // kept for a node that opens soon
    vi.advanceTimersByTime(1)
    // given back (native/malloc-tune, built by npm install): those pages read as zeros now
    expect(free.every((b) => b === 0)).toBe(true)
    expect(stillWriting.every((b) => b === 7)).toBe(true)
    // given back: the next borrower gets a new arena
    const next = borrowReceiveArena()
    expect(next).not.toBe(pool)
    returnReceiveArena(next)
    vi.advanceTimersByTime(IDLE_ARENA_MS)
  })

  it("keeps at most two idle arenas; one more gives its memory back at once", () => {
    vi.useFakeTimers()
    const pools = [borrowReceiveArena(), borrowReceiveArena(), borrowReceiveArena()]
    const third = pools[2]!.take(MIB).fill(5)
    pools[2]!.release(third)
    for (const p of pools) returnReceiveArena(p)
    expect(third.every((b) => b === 0)).toBe(true)
    const again = [borrowReceiveArena(), borrowReceiveArena(), borrowReceiveArena()]
    expect(again.slice(0, 2)).toContain(pools[0])
    expect(again.slice(0, 2)).toContain(pools[1])
    expect(again[2]).not.toBe(pools[2])
    for (const p of again) returnReceiveArena(p)
    vi.advanceTimersByTime(IDLE_ARENA_MS)
  })
})

describe("receive arenas that cannot be had", () => {
  it("an arena without page-aligned memory is ordinary memory of the same size, counted as a fallback", () => {
    vi.useFakeTimers()
    const before = { ...arenaStats }
    const pool = borrowReceiveArena((length) => new Uint8Array(length))
    expect(arenaStats.created).toBe(before.created + 1)
    expect(arenaStats.fallback).toBe(before.fallback + 1)
    expect(pool.freeBytes).toBe(RECEIVE_ARENA_BYTES)
    const slice = pool.take(3 * MIB).fill(4)
    expect(pool.freeBytes).toBe(RECEIVE_ARENA_BYTES - 3 * MIB)
    pool.release(slice)
    returnReceiveArena(pool)
    vi.advanceTimersByTime(IDLE_ARENA_MS)
  })

  it("an arena that cannot be allocated at all is empty: the node still gets a pool, and every chunk a fresh buffer of its own", () => {
    vi.useFakeTimers()
    const before = { ...arenaStats }
    const pool = borrowReceiveArena(() => {
      throw new RangeError("Array buffer allocation failed")
    })
    expect(arenaStats.created).toBe(before.created + 1)
    expect(arenaStats.fallback).toBe(before.fallback + 1)
    expect(pool.freeBytes).toBe(0)
    const a = pool.take(5 * MIB + 1).fill(1)
    const b = pool.take(MIB).fill(2)
    expect(a.length).toBe(6 * MIB)
    expect(b.length).toBe(MIB)
    expect(a.buffer).not.toBe(b.buffer)
    expect(a.every((x) => x === 1) && b.every((x) => x === 2)).toBe(true)
    pool.release(a)
    pool.release(b)
    expect(pool.freeBytes).toBe(0)
    returnReceiveArena(pool)
    vi.advanceTimersByTime(IDLE_ARENA_MS)
  })

  it("a page-aligned arena is no fallback", () => {
    vi.useFakeTimers()
    const before = { ...arenaStats }
    const pool = borrowReceiveArena()
    expect(arenaStats.created).toBe(before.created + 1)
    expect(arenaStats.fallback).toBe(before.fallback)
    returnReceiveArena(pool)
    vi.advanceTimersByTime(IDLE_ARENA_MS)
  })
})
