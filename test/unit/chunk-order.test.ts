import { describe, expect, it } from "vitest"
import { ChunkOrder, shuffled } from "../../plugin/chunk-order.ts"

const drain = (o: ChunkOrder) => {
  const out: number[] = []
  for (let i = o.next(); i !== undefined; i = o.next()) out.push(i)
  return out
}

describe("ChunkOrder (which chunk a reader fetches next)", () => {
  it("hands out every chunk exactly once, in an order fixed per node and different across nodes", () => {
    const a = drain(new ChunkOrder(300, "node-a", () => false))
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    expect(drain(new ChunkOrder(300, "node-a", () => false))).toEqual(a)
    expect(drain(new ChunkOrder(300, "node-b", () => false))).not.toEqual(a)
    expect(a).toEqual(shuffled(300, "node-a"))
  })

  it("picks a chunk some peer already holds before the chunks only the producer has", () => {
    const order = shuffled(100, "r1")
    const held = new Set([order[10]!, order[40]!])
    const o = new ChunkOrder(100, "r1", (i) => held.has(i))
    expect(o.next()).toBe(order[10])
    expect(o.next()).toBe(order[40])
    // nothing else is held by a peer: back to this node's own order
    expect(o.next()).toBe(order[0])
    expect(o.next()).toBe(order[1])
  })

  it("sees chunks peers got after the read started", () => {
    const order = shuffled(50, "r2")
    const held = new Set<number>()
    const o = new ChunkOrder(50, "r2", (i) => held.has(i))
    expect(o.next()).toBe(order[0])
    held.add(order[30]!)
    expect(o.next()).toBe(order[30])
    expect(drain(o)).toHaveLength(48)
  })

  it("looks only a bounded way ahead for a peer-held chunk", () => {
    const order = shuffled(200, "r3")
    const o = new ChunkOrder(200, "r3", (i) => i === order[150], 64)
    expect(o.next()).toBe(order[0])
  })
})
