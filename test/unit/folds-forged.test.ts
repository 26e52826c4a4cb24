import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { describe, expect, it } from "vitest"
import { HeatIndex, HolderIndex, holdersFold, nodesFold } from "../../folds/index.ts"
import { seededRandom } from "../support/random.ts"

/** The pure rules that keep forged or noisy fold events from stalling or growing a fold. */

const hashPool = (n: number, seed: number) => {
  const r = seededRandom(seed)
  return Array.from({ length: n }, () => Array.from({ length: 64 }, () => "0123456789abcdef"[Math.floor(r() * 16)]).join(""))
}
const add = (hashes: string[]) => ({ add: hashes, remove: [] })

/** A forced GC: `--expose-gc` when the runner passed it, else enabled at runtime. */
function gcFn(): () => void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g) return g
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
}

describe("Fold limits (forged and noisy events)", () => {
  const [h1, h2, h3, fake] = hashPool(4, 11) as [string, string, string, string]

  it("with confirmEpochs, another epoch voids nothing: only the origin's own snapshot moves it", () => {
    const fold = holdersFold.create({ confirmEpochs: true })
    fold.apply({ origin: "a", epoch: 10, seq: 1, data: add([h1]) })
    expect(fold.apply({ origin: "a", epoch: 11, seq: 1, data: { add: [fake], remove: [h1] } })).toEqual({ kind: "rejected", reason: "new-epoch" })
    expect(fold.apply({ origin: "a", epoch: 9, seq: 5, data: add([fake]) }).kind).toBe("stale-epoch")
    expect(fold.state.holdersOf(h1)).toEqual(["a"])
    expect(fold.state.holdersOf(fake)).toEqual([])
    // the origin answers: it restarted under epoch 12 and holds h2
    expect(fold.restoreOrigin("a", { epoch: 12, seq: 3 }, [{ hash: h2, kind: "blob" }], 0, true)).toBe(true)
    expect(fold.watermarkOf("a")).toEqual({ epoch: 12, seq: 3 })
    expect(fold.state.holdersOf(h1)).toEqual([])
    expect(fold.apply({ origin: "a", epoch: 12, seq: 4, data: add([h3]) }).kind).toBe("applied")
  })

  it("an authoritative snapshot moves a forged newer epoch back to the origin's real, older one", () => {
    // without confirmEpochs (an origin first heard through a forger): the forged epoch took hold
    const fold = holdersFold.create()
    fold.apply({ origin: "a", epoch: 99, seq: 1, data: add([fake]) })
    expect(fold.restoreOrigin("a", { epoch: 10, seq: 7 }, [{ hash: h1, kind: "blob" }])).toBe(false)
    expect(fold.restoreOrigin("a", { epoch: 10, seq: 7 }, [{ hash: h1, kind: "blob" }], 0, true)).toBe(true)
    expect(fold.watermarkOf("a")).toEqual({ epoch: 10, seq: 7 })
    expect(fold.state.holdersOf(fake)).toEqual([])
    expect(fold.apply({ origin: "a", epoch: 10, seq: 8, data: add([h2]) }).kind).toBe("applied")
  })

  it("a seq past the watermark by more than maxSeqJump is neither applied nor held back", () => {
    const fold = holdersFold.create({ maxSeqJump: 100 })
    fold.apply({ origin: "a", epoch: 1, seq: 1, data: add([h1]) })
    expect(fold.apply({ origin: "a", epoch: 1, seq: Number.MAX_SAFE_INTEGER, data: add([fake]) })).toEqual({ kind: "rejected", reason: "seq-jump" })
    expect(fold.hasGap("a")).toBe(false)
    expect(fold.watermarkOf("a")?.seq).toBe(1)
    expect(fold.apply({ origin: "a", epoch: 1, seq: 2, data: add([h2]) }).kind).toBe("applied")
    // a heartbeat fold (replaces) would otherwise jump straight to it and call every real one a replay
    const nodes = nodesFold().create({ maxSeqJump: 100 })
    const hb = { intervalMs: 100, watermarks: {} }
    nodes.apply({ origin: "a", epoch: 1, seq: 1, data: hb })
    expect(nodes.apply({ origin: "a", epoch: 1, seq: 2 ** 52, data: hb }).kind).toBe("rejected")
    expect(nodes.apply({ origin: "a", epoch: 1, seq: 50, data: hb }).kind).toBe("applied")
  })

  it("a forged seq the first time an origin is heard is undone by its authoritative snapshot", () => {
    const nodes = nodesFold().create()
    const hb = { intervalMs: 100, watermarks: {} }
    nodes.apply({ origin: "a", epoch: 1, seq: 2 ** 52, data: hb })
    expect(nodes.apply({ origin: "a", epoch: 1, seq: 10, data: hb }).kind).toBe("duplicate")
    // the snapshot is a replaces fold's whole state: taken even though its seq is lower
    expect(nodes.restoreOrigin("a", { epoch: 1, seq: 10 }, [hb], 0, true)).toBe(true)
    expect(nodes.apply({ origin: "a", epoch: 1, seq: 11, data: hb }).kind).toBe("applied")
    // holders: a lead within maxSeqJump is events published after the capture: kept
    const holders = holdersFold.create({ maxSeqJump: 100 })
    for (let seq = 1; seq <= 50; seq++) holders.apply({ origin: "b", epoch: 1, seq, data: add([h1]) })
    expect(holders.restoreOrigin("b", { epoch: 1, seq: 40 }, [], 0, true)).toBe(false)
    expect(holders.state.holdersOf(h1)).toEqual(["b"])
    // a first event far ahead is held back behind a gap; the snapshot fills from the start
    holders.apply({ origin: "c", epoch: 1, seq: 5000, data: add([fake]) })
    expect(holders.restoreOrigin("c", { epoch: 1, seq: 3 }, [{ hash: h2, kind: "blob" }], 0, true)).toBe(true)
    expect(holders.state.holdersOf(fake)).toEqual([])
  })

  it("an authoritative snapshot drops held-back events that do not follow on from it", () => {
    const fold = holdersFold.create()
    fold.apply({ origin: "a", epoch: 1, seq: 1, data: add([h1]) })
    expect(fold.apply({ origin: "a", epoch: 1, seq: 9, data: add([fake]) }).kind).toBe("gap")
    expect(fold.apply({ origin: "a", epoch: 1, seq: 4, data: add([h3]) }).kind).toBe("gap")
    fold.restoreOrigin("a", { epoch: 1, seq: 3 }, [{ hash: h1, kind: "blob" }], 0, true)
    // 4 follows on and is applied; 9 does not and is not waited for
    expect(fold.watermarkOf("a")?.seq).toBe(4)
    expect(fold.hasGap("a")).toBe(false)
    for (let seq = 5; seq <= 9; seq++) fold.apply({ origin: "a", epoch: 1, seq, data: add([h2]) })
    expect(fold.state.holdersOf(fake)).toEqual([])
    expect(fold.state.holdersOf(h3)).toEqual(["a"])
  })

  it("a replay of a recently applied seq with other bytes is a conflict; the same bytes a duplicate", () => {
    const fold = holdersFold.create()
    fold.apply({ origin: "a", epoch: 1, seq: 1, data: add([h1]), digest: 111 })
    // the forged "next" event got in first; the real one is not a harmless replay
    fold.apply({ origin: "a", epoch: 1, seq: 2, data: add([fake]), digest: 666 })
    expect(fold.apply({ origin: "a", epoch: 1, seq: 2, data: add([h2]), digest: 222 })).toEqual({ kind: "rejected", reason: "conflict" })
    expect(fold.apply({ origin: "a", epoch: 1, seq: 2, data: add([fake]), digest: 666 }).kind).toBe("duplicate")
    // a seq restored from a snapshot has no digest to compare: a replay of it is a duplicate
    fold.restoreOrigin("a", { epoch: 1, seq: 5 }, [{ hash: h2, kind: "blob" }])
    expect(fold.apply({ origin: "a", epoch: 1, seq: 4, data: add([h3]), digest: 444 }).kind).toBe("duplicate")
  })

  it("past maxOrigins the least recently heard evictable origin makes room; with none evictable the newcomer is refused", () => {
    const live = new Set(["keep"])
    const fold = holdersFold.create({ maxOrigins: 3, evictable: (o) => !live.has(o) })
    fold.apply({ origin: "keep", epoch: 1, seq: 1, data: add([h1]) })
    fold.apply({ origin: "x1", epoch: 1, seq: 1, data: add([h2]) })
    fold.apply({ origin: "x2", epoch: 1, seq: 1, data: add([h3]) })
    // keep is the oldest but live: x1 goes
    expect(fold.apply({ origin: "x3", epoch: 1, seq: 1, data: add([fake]) }).kind).toBe("applied")
    expect([...fold.watermarks().keys()].sort()).toEqual(["keep", "x2", "x3"])
    expect(fold.state.holdersOf(h2)).toEqual([])
    live.add("x2").add("x3")
    expect(fold.apply({ origin: "x4", epoch: 1, seq: 1, data: add([fake]) })).toEqual({ kind: "rejected", reason: "origin-cap" })
    expect(fold.origins).toBe(3)
    for (let i = 0; i < 10_000; i++) fold.apply({ origin: `flood-${i}`, epoch: 1, seq: 1, data: add([fake]) })
    expect(fold.origins).toBe(3)
  })

  it("entryLimit caps what one origin adds, in events and in restores; own and kind changes still apply", () => {
    const many = hashPool(50, 12)
    const fold = holdersFold.create({ entryLimit: (o) => (o === "big" ? 20 : 5) })
    fold.apply({ origin: "small", epoch: 1, seq: 1, data: add(many) })
    expect(fold.state.countOf("small")).toBe(5)
    fold.apply({ origin: "small", epoch: 1, seq: 2, data: { add: many.slice(0, 5), remove: [], kind: "chunk" } })
    expect(fold.state.countOf("small")).toBe(5)
    fold.restoreOrigin("big", { epoch: 1, seq: 1 }, many.map((hash) => ({ hash, kind: "blob" as const })))
    expect(fold.state.countOf("big")).toBe(20)
    expect(fold.state.capped).toBe(45 + 30)
    // a removal makes room again
    fold.apply({ origin: "small", epoch: 1, seq: 3, data: { add: [many[40]!], remove: [many[0]!] } })
    expect(fold.state.holdersOf(many[40]!)).toEqual(["small"])
    // the limit it was cut at is remembered (the materializer re-syncs once it may hold more), until cleared
    expect(fold.state.cappedAt("small")).toBe(5)
    expect(fold.state.cappedAt("big")).toBe(20)
    fold.restoreOrigin("small", { epoch: 1, seq: 9 }, [])
    expect(fold.state.cappedAt("small")).toBeUndefined()
  })

  it("HolderIndex: maxPairs bounds the whole index; a forgotten node's id is reused, so churn does not grow it", () => {
    const idx = new HolderIndex(10)
    const pool = hashPool(20, 13)
    for (const h of pool) idx.add("a", h)
    expect(idx.pairs).toBe(10)
    expect(idx.capped).toBe(10)
    idx.clear("a")
    expect(idx.pairs).toBe(0)
    for (let i = 0; i < 5000; i++) {
      idx.add(`n${i}`, pool[i % 20]!)
      idx.clear(`n${i}`)
    }
    expect(idx.internedNodes).toBe(0)
    expect(idx.pairs).toBe(0)
    idx.add("b", pool[0]!)
    expect(idx.holdersOf(pool[0]!)).toEqual(["b"])
  })

  it("HolderIndex: clearing a small node touches only its own keys, a large one still clears fully", () => {
    const idx = new HolderIndex()
    const pool = hashPool(200, 14)
    for (const h of pool) idx.add("large", h)
    for (const h of pool.slice(0, 10)) idx.add("small", h, "chunk")
    idx.remove("small", pool[0]!)
    idx.add("small", pool[0]!)
    idx.clear("small")
    expect(idx.pairs).toBe(200)
    expect(pool.every((h) => idx.holdersOf(h).join() === "large")).toBe(true)
    idx.clear("large")
    expect(idx.pairs).toBe(0)
    expect(idx.hashes).toBe(0)
  })

  it("one origin advertising a million hashes keeps its 100k cap: heap growth stays near 100k pairs", () => {
    const gc = gcFn()
    const fold = holdersFold.create({ entryLimit: () => 100_000 })
    // distinct hashes, cheap to make: a fixed stem, then the seq and the index in hex
    const stem = hashPool(1, 16)[0]!.slice(0, 48)
    const hex8 = (n: number) => n.toString(16).padStart(8, "0")
    const batch = (seq: number) => Array.from({ length: 10_000 }, (_, i) => stem + hex8(seq) + hex8(i))
    gc()
    const before = process.memoryUsage().heapUsed
    for (let seq = 1; seq <= 100; seq++) fold.apply({ origin: "liar", epoch: 1, seq, data: add(batch(seq)) })
    gc()
    const grown = process.memoryUsage().heapUsed - before
    console.log(`1M advertised, ${fold.state.countOf("liar")} kept: heap +${(grown / 2 ** 20).toFixed(1)} MiB`)
    expect(fold.state.countOf("liar")).toBe(100_000)
    expect(fold.state.capped).toBe(900_000)
    // ~85 B per pair: 100k pairs ~8 MiB; a million would be ~85 MiB
    expect(grown).toBeLessThan(24 * 2 ** 20)
  })

  it("HeatIndex: a hash new to an origin at its limit is dropped; reads of hashes it has still count", () => {
    const heat = new HeatIndex(60_000)
    const pool = hashPool(10, 15)
    for (const h of pool) heat.add("o", h, 1, 0, 4)
    expect(heat.entriesOf("o", 0)).toHaveLength(4)
    expect(heat.capped).toBe(6)
    expect(heat.cappedAt("o")).toBe(4)
    heat.add("o", pool[0]!, 2, 0, 4)
    expect(heat.heatOf(pool[0]!, 0)).toBeCloseTo(3)
  })
})
