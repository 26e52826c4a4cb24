import { describe, expect, it } from "vitest"
import { HeatIndex, heatFold } from "../../folds/index.ts"

const H = (c: string) => c.repeat(64)
const MIN = 60_000

describe("HeatIndex", () => {
  it("halves a hash's heat every half-life", () => {
    const heat = new HeatIndex(10 * MIN)
    heat.add("a", H("1"), 8, 0)
    expect(heat.heatOf(H("1"), 0)).toBeCloseTo(8)
    expect(heat.heatOf(H("1"), 10 * MIN)).toBeCloseTo(4)
    expect(heat.heatOf(H("1"), 30 * MIN)).toBeCloseTo(1)
    expect(heat.heatOf(H("2"), 0)).toBe(0)
  })

  it("sums reads across nodes and keeps each node's share", () => {
    const heat = new HeatIndex(MIN)
    heat.add("a", H("1"), 3, 0)
    heat.add("b", H("1"), 1, MIN) // a's 3 have decayed to 1.5 by then
    expect(heat.heatOf(H("1"), MIN)).toBeCloseTo(2.5)
    expect(heat.heatOfBy(H("1"), "a", MIN)).toBeCloseTo(1.5)
    expect(heat.heatOfBy(H("1"), "b", MIN)).toBeCloseTo(1)
  })

  it("ranks topN by decayed heat: recent reads beat older, larger ones", () => {
    const heat = new HeatIndex(MIN)
    heat.add("a", H("1"), 10, 0)
    heat.add("a", H("2"), 4, 3 * MIN) // 10 decays to 1.25 by then
    heat.add("b", H("3"), 2, 3 * MIN)
    const top = heat.topN(2, 3 * MIN)
    expect(top.map((t) => t.hash)).toEqual([H("2"), H("3")])
    expect(top[0]!.heat).toBeCloseTo(4)
    expect(heat.topN(10, 3 * MIN).map((t) => t.hash)).toEqual([H("2"), H("3"), H("1")])
    expect(heat.topN(0, 0)).toEqual([])
  })

  it("decay() rebases without changing heat and forgets cold hashes", () => {
    const heat = new HeatIndex(MIN)
    heat.add("a", H("1"), 1, 0)
    heat.add("a", H("2"), 1e6, 0)
    heat.decay(15 * MIN) // H("1") is now 1/32768 < 0.001
    expect(heat.topN(5, 15 * MIN).map((t) => t.hash)).toEqual([H("2")])
    expect(heat.heatOf(H("2"), 15 * MIN)).toBeCloseTo(1e6 / 2 ** 15)
    // after many half-lives stored numbers stay finite
    heat.add("a", H("3"), 1, 5000 * MIN)
    heat.decay(5000 * MIN)
    expect(heat.heatOf(H("3"), 5000 * MIN)).toBeCloseTo(1)
  })
})

describe("heat fold", () => {
  it("snapshot of one origin restores its share of the heat elsewhere", () => {
    const def = heatFold(MIN)
    const src = def.create()
    src.apply({ origin: "a", seq: 1, data: { reads: [[H("1"), 4], [H("2"), 2]] } }, 0)
    src.apply({ origin: "b", seq: 1, data: { reads: [[H("1"), 1]] } }, 0)
    const snap = src.snapshotOrigin("a", MIN)
    expect(snap.seq).toBe(1)

    const dst = def.create()
    dst.apply({ origin: "b", seq: 1, data: { reads: [[H("1"), 1]] } }, 0)
    dst.restoreOrigin("a", { epoch: snap.epoch, seq: snap.seq }, snap.entries, MIN)
    expect(dst.state.heatOf(H("1"), MIN)).toBeCloseTo(src.state.heatOf(H("1"), MIN))
    expect(dst.state.topN(2, MIN).map((t) => t.hash)).toEqual([H("1"), H("2")])
    // restoring again replaces rather than adds
    dst.restoreOrigin("a", { epoch: snap.epoch, seq: snap.seq }, snap.entries, MIN)
    expect(dst.state.heatOf(H("1"), MIN)).toBeCloseTo(2.5)
  })
})
