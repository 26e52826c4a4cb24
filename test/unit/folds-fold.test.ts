import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { defineFold, type FoldEvent, holdersFold, type HoldersDelta } from "../../folds/index.ts"
import { seededRandom as rng } from "../support/random.ts"

const hashPool = (n: number, seed: number) => {
  const r = rng(seed)
  return Array.from({ length: n }, () => Array.from({ length: 64 }, () => "0123456789abcdef"[Math.floor(r() * 16)]).join(""))
}

/** A log of holders events from three origins, interleaved, each origin's seq 1, 2, 3, … */
function holdersLog(seed: number, length: number): FoldEvent<HoldersDelta>[] {
  const r = rng(seed)
  const pool = hashPool(64, seed)
  const seqs = new Map<string, number>()
  return Array.from({ length }, () => {
    const origin = ["a", "b", "c"][Math.floor(r() * 3)]!
    const seq = (seqs.get(origin) ?? 0) + 1
    seqs.set(origin, seq)
    const pick = () => Array.from({ length: Math.floor(r() * 4) }, () => pool[Math.floor(r() * pool.length)]!)
    const add = pick()
    const remove = pick().filter((h) => !add.includes(h))
    return { origin, seq, data: r() < 0.3 ? { add, remove, kind: "chunk" as const } : { add, remove } }
  })
}

/** A comparable view of a holders fold: watermarks and sorted entries per origin. */
function view(fold: ReturnType<typeof holdersFold.create>) {
  return fold
    .snapshot(0)
    .origins.map((o) => ({ ...o, entries: [...o.entries].sort((x, y) => (x.hash < y.hash ? -1 : 1)) }))
    .sort((x, y) => (x.origin < y.origin ? -1 : 1))
}

describe("Fold (generic machinery)", () => {
  it.each([1, 2, 3, 42])("replaying the whole log is a no-op (seed %i)", (seed) => {
    const log = holdersLog(seed, 300)
    const fold = holdersFold.create()
    for (const e of log) expect(fold.apply(e, 0).kind).toBe("applied")
    const once = view(fold)
    for (const e of log) expect(fold.apply(e, 0).kind).toBe("duplicate")
    expect(view(fold)).toEqual(once)
  })

  it.each([1, 7, 99])("restore(snapshot(prefix)) + an overlapping tail equals the full fold (seed %i)", (seed) => {
    const log = holdersLog(seed, 400)
    const full = holdersFold.create()
    for (const e of log) full.apply(e, 0)
    for (const cut of [0, 1, 50, 200, 399, 400]) {
      const prefix = holdersFold.create()
      for (const e of log.slice(0, cut)) prefix.apply(e, 0)
      const restored = holdersFold.create()
      restored.restore(prefix.snapshot(0), 0)
      // a resubscribe overlaps: the tail starts 20 events before the cut
      for (const e of log.slice(Math.max(0, cut - 20))) restored.apply(e, 0)
      expect(view(restored)).toEqual(view(full))
    }
  })

  it("reports a gap, holds the event back, and applies it once the missing one arrives", () => {
    const [h1, h2, h3] = hashPool(3, 5) as [string, string, string]
    const fold = holdersFold.create()
    expect(fold.apply({ origin: "a", seq: 1, data: { add: [h1], remove: [] } }).kind).toBe("applied")
    expect(fold.apply({ origin: "a", seq: 3, data: { add: [h3], remove: [] } })).toEqual({ kind: "gap", origin: "a", expected: 2, got: 3 })
    expect(fold.hasGap("a")).toBe(true)
    expect(fold.state.holdersOf(h3)).toEqual([])
    expect(fold.watermarkOf("a")?.seq).toBe(1)
    expect(fold.apply({ origin: "a", seq: 2, data: { add: [h2], remove: [] } }).kind).toBe("applied")
    expect(fold.watermarkOf("a")?.seq).toBe(3)
    expect(fold.hasGap("a")).toBe(false)
    expect([h1, h2, h3].map((h) => fold.state.holdersOf(h))).toEqual([["a"], ["a"], ["a"]])
  })

  it("a snapshot restore fills a gap and then drains held-back events past it", () => {
    const [h1, h2, h3, h4] = hashPool(4, 6) as [string, string, string, string]
    const fold = holdersFold.create()
    fold.apply({ origin: "a", seq: 1, data: { add: [h1], remove: [] } })
    expect(fold.apply({ origin: "a", seq: 4, data: { add: [h4], remove: [] } }).kind).toBe("gap")
    // the origin's snapshot at seq 3: h1 dropped, h2 and h3 held
    expect(fold.restoreOrigin("a", { epoch: 0, seq: 3 }, [{ hash: h2, kind: "blob" }, { hash: h3, kind: "chunk" }])).toBe(true)
    expect(fold.watermarkOf("a")?.seq).toBe(4)
    expect([h1, h2, h3, h4].map((h) => fold.state.holdersOf(h).length)).toEqual([0, 1, 1, 1])
    // an older snapshot never rolls the fold back
    expect(fold.restoreOrigin("a", { epoch: 0, seq: 2 }, [])).toBe(false)
    expect(fold.state.pairs).toBe(3)
  })

  it("a new epoch from an origin replaces what the old one said; an old epoch is stale", () => {
    const [h1, h2] = hashPool(2, 8) as [string, string]
    const fold = holdersFold.create()
    fold.apply({ origin: "a", epoch: 10, seq: 1, data: { add: [h1], remove: [] } })
    fold.apply({ origin: "a", epoch: 10, seq: 2, data: { add: [h2], remove: [] } })
    expect(fold.apply({ origin: "a", epoch: 20, seq: 1, data: { add: [h2], remove: [] } }).kind).toBe("applied")
    expect(fold.state.holdersOf(h1)).toEqual([])
    expect(fold.state.holdersOf(h2)).toEqual(["a"])
    expect(fold.apply({ origin: "a", epoch: 10, seq: 3, data: { add: [h1], remove: [] } }).kind).toBe("stale-epoch")
    expect(fold.watermarkOf("a")).toEqual({ epoch: 20, seq: 1 })
  })

  it("forget drops an origin's contribution and watermark", () => {
    const [h1] = hashPool(1, 9) as [string]
    const fold = holdersFold.create()
    fold.apply({ origin: "a", seq: 1, data: { add: [h1], remove: [] } })
    fold.apply({ origin: "b", seq: 1, data: { add: [h1], remove: [] } })
    fold.forget("a")
    expect(fold.state.holdersOf(h1)).toEqual(["b"])
    expect(fold.watermarkOf("a")).toBeUndefined()
  })
})

describe("defineFold (application folds)", () => {
  /** An application's own fold: which artifacts each build node has published (name → ref). */
  const ArtifactReady = Schema.Struct({ name: Schema.String, ref: Schema.String })
  const artifacts = defineFold({
    name: "artifacts",
    data: ArtifactReady,
    entry: ArtifactReady,
    initial: () => new Map<string, Map<string, string>>(),
    apply(state, e, { origin }) {
      const mine = state.get(origin) ?? new Map<string, string>()
      state.set(origin, mine.set(e.name, e.ref))
      return state
    },
    snapshotOrigin: (state, origin) => [...(state.get(origin) ?? [])].map(([name, ref]) => ({ name, ref })),
    restoreOrigin(state, origin, entries) {
      state.set(origin, new Map(entries.map((e) => [e.name, e.ref])))
      return state
    },
  })
  const latest = (s: Map<string, Map<string, string>>, name: string) => [...s.values()].map((m) => m.get(name)).filter(Boolean)

  it("folds application events with the same replay, gap and snapshot machinery", () => {
    const fold = artifacts.create()
    const log = [
      { origin: "ci-1", seq: 1, data: { name: "app", ref: "r1" } },
      { origin: "ci-2", seq: 1, data: { name: "lib", ref: "r2" } },
      { origin: "ci-1", seq: 2, data: { name: "app", ref: "r3" } },
    ]
    for (const e of log) fold.apply(e)
    for (const e of log) expect(fold.apply(e).kind).toBe("duplicate")
    expect(latest(fold.state, "app")).toEqual(["r3"])
    expect(fold.apply({ origin: "ci-2", seq: 3, data: { name: "lib", ref: "r9" } }).kind).toBe("gap")

    const copy = artifacts.create()
    copy.restore(fold.snapshot())
    expect(latest(copy.state, "app")).toEqual(["r3"])
    expect(latest(copy.state, "lib")).toEqual(["r2"])
    expect(copy.watermarkOf("ci-1")?.seq).toBe(2)
  })

  it("rejects a fold name that is not subject-safe", () => {
    expect(() => defineFold({ ...artifacts.spec, name: "a.b" })).toThrow(TypeError)
  })
})
