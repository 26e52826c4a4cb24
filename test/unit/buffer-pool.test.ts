import { describe, expect, it } from "vitest"
import { BufferPool } from "../../plugin/buffer-pool.ts"

describe("BufferPool", () => {
  it("reuses the smallest free buffer that fits", () => {
    const pool = new BufferPool(64 << 20)
    const big = pool.take(9 << 20)
    const small = pool.take(3 << 20)
    pool.release(big)
    pool.release(small)
    expect(pool.take(2 << 20)).toBe(small)
    expect(pool.take(5 << 20)).toBe(big)
  })

  it("keeps at most keepBytes of free buffers, whatever sizes it has seen", () => {
    const pool = new BufferPool(10 << 20)
    const bufs = [pool.take(4 << 20), pool.take(4 << 20), pool.take(4 << 20), pool.take(16 << 20)]
    for (const b of bufs) pool.release(b)
    expect(pool.freeBytes).toBe(8 << 20)
  })
})
