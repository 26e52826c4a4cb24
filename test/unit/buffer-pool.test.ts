import { describe, expect, it } from "vitest"
import { BufferPool, ownedCopy } from "../../plugin/buffer-pool.ts"

const MIB = 1 << 20
const overlaps = (a: Uint8Array, b: Uint8Array) =>
  a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length

describe("BufferPool (one arena, whole MiB, first fit)", () => {
  it("hands out disjoint slices of one arena, rounded up to whole MiB", () => {
    const pool = new BufferPool(16 * MIB)
    const a = pool.take(3 * MIB - 5)
    const b = pool.take(1)
    const c = pool.take(4 * MIB)
    expect([a.length, b.length, c.length]).toEqual([3 * MIB, MIB, 4 * MIB])
    expect(a.buffer).toBe(b.buffer)
    expect(overlaps(a, b) || overlaps(b, c) || overlaps(a, c)).toBe(false)
    expect(pool.freeBytes).toBe(8 * MIB)
  })

  it("reuses released space, and joins neighbouring free runs for a larger buffer", () => {
    const pool = new BufferPool(8 * MIB)
    const a = pool.take(2 * MIB)
    const b = pool.take(2 * MIB)
    pool.take(4 * MIB)
    pool.release(a)
    pool.release(b)
    const big = pool.take(4 * MIB)
    expect(big.buffer).toBe(a.buffer)
    expect(big.byteOffset).toBe(a.byteOffset)
    expect(pool.freeBytes).toBe(0)
  })

  it("beyond the arena makes fresh buffers, which release leaves alone", () => {
    const pool = new BufferPool(4 * MIB)
    const inArena = pool.take(4 * MIB)
    const fresh = pool.take(MIB)
    expect(fresh.buffer).not.toBe(inArena.buffer)
    pool.release(fresh)
    expect(pool.freeBytes).toBe(0)
    pool.release(inArena)
    expect(pool.freeBytes).toBe(4 * MIB)
  })

  it("lists the free runs of the arena, whole and between taken slices", () => {
    const pool = new BufferPool(8 * MIB)
    expect(pool.freeRuns().map((r) => [r.byteOffset, r.length])).toEqual([[0, 8 * MIB]])
    const a = pool.take(MIB)
    const b = pool.take(2 * MIB)
    pool.take(MIB)
    pool.release(b)
    const runs = pool.freeRuns()
    expect(runs.map((r) => [r.byteOffset - a.byteOffset, r.length])).toEqual([
      [MIB, 2 * MIB],
      [4 * MIB, 4 * MIB],
    ])
    expect(runs.every((r) => r.buffer === a.buffer)).toBe(true)
  })

  it("makes the arena with the given allocator (e.g. page-aligned memory)", () => {
    let asked = 0
    const pool = new BufferPool(2 * MIB, (n) => new Uint8Array((asked = n)))
    expect(asked).toBe(2 * MIB)
    expect(pool.take(10).length).toBe(MIB)
  })

  it("ownedCopy gives the same bytes in a buffer of exactly their length, apart from the pool's", () => {
    const pool = new BufferPool(4 * MIB)
    const lent = pool.take(300_001).subarray(0, 300_001)
    for (let i = 0; i < lent.length; i++) lent[i] = (i * 31) & 0xff
    const copy = ownedCopy(lent)
    expect(copy.constructor).toBe(Uint8Array)
    expect(copy.byteOffset).toBe(0)
    expect(copy.buffer.byteLength).toBe(lent.length)
    expect(Buffer.compare(copy, lent)).toBe(0)
    lent.fill(0) // the pool reuses its memory: the copy must not change
    expect(copy[1]).toBe(31)
    expect(ownedCopy(new Uint8Array(0)).length).toBe(0)
  })
})
