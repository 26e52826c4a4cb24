import { describe, expect, it } from "vitest"
import { nodesFold } from "../../folds/index.ts"
import { decodeOr, decodePage, encodePage, Envelope } from "../../folds/wire.ts"

describe("nodes fold", () => {
  it("a node is alive until 3 of its own intervals pass without a heartbeat", () => {
    const fold = nodesFold().create()
    fold.apply({ origin: "a", seq: 1, data: { intervalMs: 100, watermarks: {} } }, 1000)
    fold.apply({ origin: "b", seq: 1, data: { intervalMs: 1000, watermarks: {}, zone: "z" } }, 1000)
    expect(fold.state.liveNodes(1299)).toEqual(["a", "b"])
    expect(fold.state.isAlive("a", 1300)).toBe(false)
    expect(fold.state.isAlive("b", 3999)).toBe(true)
    expect(fold.state.isAlive("nobody", 0)).toBe(false)
    expect(fold.state.zoneOf("b")).toBe("z")
    expect(fold.state.zoneOf("a")).toBeUndefined()
  })

  it("a configured timeout overrides the interval rule", () => {
    const fold = nodesFold({ timeoutMs: 50 }).create()
    fold.apply({ origin: "a", seq: 1, data: { intervalMs: 1000, watermarks: {} } }, 0)
    expect(fold.state.isAlive("a", 49)).toBe(true)
    expect(fold.state.isAlive("a", 50)).toBe(false)
  })

  it("heartbeats replace each other, so a missed one is not a gap", () => {
    const fold = nodesFold().create()
    fold.apply({ origin: "a", seq: 1, data: { intervalMs: 100, watermarks: { holders: 1 } } }, 0)
    expect(fold.apply({ origin: "a", seq: 5, data: { intervalMs: 100, watermarks: { holders: 9 } } }, 10).kind).toBe("applied")
    expect(fold.state.heartbeatOf("a")?.watermarks).toEqual({ holders: 9 })
    expect(fold.state.isAlive("a", 300)).toBe(true)
  })

  it("smooths RTT samples", () => {
    const fold = nodesFold().create()
    fold.state.recordRtt("a", 10)
    fold.state.recordRtt("a", 20)
    expect(fold.state.rttOf("a")).toBeCloseTo(13)
    expect(fold.state.rttOf("b")).toBeUndefined()
  })
})

describe("fold wire format", () => {
  it("round-trips a page frame and rejects a truncated one", () => {
    const header = { fold: "holders", origin: "a", epoch: 1, seq: 3, id: "x", page: 0, pages: 1 }
    const frame = encodePage(header, new Uint8Array([1, 2, 3]))
    const back = decodePage(frame)
    expect(back?.header).toEqual(header)
    expect([...back!.body]).toEqual([1, 2, 3])
    expect(decodePage(frame.subarray(0, 6))).toBeUndefined()
    expect(decodePage(new Uint8Array([0, 0, 0, 2, 123, 125]))).toBeUndefined()
  })

  it("rejects envelopes with a missing origin or a seq below 1", () => {
    expect(decodeOr(Envelope, { origin: "a", epoch: 1, seq: 1, data: {} })).toBeDefined()
    expect(decodeOr(Envelope, { epoch: 1, seq: 1, data: {} })).toBeUndefined()
    expect(decodeOr(Envelope, { origin: "a", epoch: 1, seq: 0, data: {} })).toBeUndefined()
    expect(decodeOr(Envelope, { origin: "a", epoch: 1, seq: 1.5, data: {} })).toBeUndefined()
  })
})
