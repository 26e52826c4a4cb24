import { describe, expect, it } from "vitest"
import { SlabPool } from "../../transfer/slab-pool.ts"

describe("SlabPool", () => {
  it("hands a retired slab out again only after the outbound queue was seen empty", () => {
    const pool = new SlabPool(1024, 4)
    const a = pool.take()
    pool.retire(a)
    pool.recycle(false) // the client may still hold frame views of `a`
    expect(pool.take()).not.toBe(a)
    pool.recycle(true)
    expect(pool.take()).toBe(a)
  })

  it("keeps at most `keep` slabs and ignores buffers of another size", () => {
    const pool = new SlabPool(64, 2)
    for (let i = 0; i < 5; i++) pool.retire(new Uint8Array(64))
    pool.retire(new Uint8Array(32))
    pool.recycle(true)
    expect(pool.size).toEqual({ free: 2, retired: 0, writing: 0 })
    expect(pool.take().length).toBe(64)
  })

  it("keeps a retired slab out of reuse while a socket write of it is pending", () => {
    const pool = new SlabPool(1024, 4)
    const a = pool.take()
    pool.lend(a)
    pool.lend(a)
    pool.retire(a)
    pool.settled(a)
    pool.recycle(true)
    expect(pool.size).toEqual({ free: 0, retired: 1, writing: 1 })
    expect(pool.take()).not.toBe(a)
    pool.settled(a)
    pool.recycle(true)
    expect(pool.take()).toBe(a)
  })
})
