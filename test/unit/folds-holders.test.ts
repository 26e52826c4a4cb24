import { randomBytes } from "node:crypto"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { describe, expect, it } from "vitest"
import { HolderIndex, holdersFold, type NearestOptions } from "../../folds/index.ts"
import { decodeEntries, encodeEntries, MAX_PAGE_BYTES, paginate } from "../../folds/wire.ts"

const hashes = (n: number) => Array.from({ length: n }, () => randomBytes(32).toString("hex"))

/** A forced GC: `--expose-gc` when the runner passed it, else enabled at runtime. */
function gcFn(): () => void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g) return g
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
}

describe("HolderIndex", () => {
  const [h1, h2] = hashes(2) as [string, string]

  it("adds, re-adds idempotently, and removes per holder", () => {
    const idx = new HolderIndex()
    idx.add("a", h1)
    idx.add("a", h1)
    idx.add("b", h1, "chunk")
    idx.add("c", h1)
    expect(idx.holdersOf(h1).sort()).toEqual(["a", "b", "c"])
    expect(idx.pairs).toBe(3)
    idx.remove("b", h1)
    idx.remove("b", h1)
    idx.remove("a", h2)
    expect(idx.holdersOf(h1).sort()).toEqual(["a", "c"])
    idx.remove("a", h1)
    idx.remove("c", h1)
    expect(idx.holdersOf(h1)).toEqual([])
    expect(idx.hashes).toBe(0)
    expect(idx.pairs).toBe(0)
  })

  it("keeps the kind per holder and reports it in entries", () => {
    const idx = new HolderIndex()
    idx.add("a", h1, "chunk")
    idx.add("a", h2)
    idx.add("b", h2, "chunk")
    expect(idx.entriesOf("a").sort((x, y) => (x.hash < y.hash ? -1 : 1))).toEqual(
      [{ hash: h1, kind: "chunk" }, { hash: h2, kind: "blob" }].sort((x, y) => (x.hash < y.hash ? -1 : 1)),
    )
    idx.clear("a")
    expect(idx.entriesOf("a")).toEqual([])
    expect(idx.holdersOf(h2)).toEqual(["b"])
  })

  describe("nearestHolders", () => {
    const idx = new HolderIndex()
    for (const n of ["self", "far-fast", "near-slow", "near-fast", "dead", "near-unmeasured"]) idx.add(n, h1)
    const zones: Record<string, string> = { self: "z1", "near-slow": "z1", "near-fast": "z1", "near-unmeasured": "z1", "far-fast": "z2", dead: "z1" }
    const rtts: Record<string, number> = { "far-fast": 0.1, "near-slow": 9, "near-fast": 2, dead: 0.01 }
    const opts: NearestOptions = {
      self: "self",
      isAlive: (n) => n !== "dead",
      rttOf: (n) => rtts[n],
      zoneOf: (n) => zones[n],
      myZone: "z1",
    }

    it("orders live holders by same zone first, then RTT, unmeasured last, without self", () => {
      expect(idx.nearestHolders(h1, opts)).toEqual(["near-fast", "near-slow", "near-unmeasured", "far-fast"])
    })

    it("orders by RTT alone when this node has no zone", () => {
      const { myZone: _, ...noZone } = opts
      expect(idx.nearestHolders(h1, noZone)).toEqual(["far-fast", "near-fast", "near-slow", "near-unmeasured"])
    })

    it("returns nothing for a hash nobody holds", () => {
      expect(idx.nearestHolders(h2, opts)).toEqual([])
    })
  })

  it("uses about 100 bytes of heap per (hash, holder) pair at 100k pairs", () => {
    const gc = gcFn()
    const N = 100_000
    const pool = hashes(N)
    const fill = (holdersPerHash: number) => {
      const idx = new HolderIndex()
      for (let i = 0; i < Math.floor(N / holdersPerHash); i++) for (let k = 0; k < holdersPerHash; k++) idx.add(`node-${k}`, pool[i]!)
      return idx
    }
    const heap = () => {
      gc()
      gc()
      return process.memoryUsage().heapUsed
    }
    // both indexes stay referenced, so each delta is exactly one index's growth
    const h0 = heap()
    const one = fill(1)
    const h1 = heap()
    const three = fill(3)
    const h2 = heap()
    const perPairOne = (h1 - h0) / one.pairs
    const perPairThree = (h2 - h1) / three.pairs
    console.log(`holders memory: ${perPairOne.toFixed(1)} B/pair (1 holder per hash), ${perPairThree.toFixed(1)} B/pair (3 holders per hash)`)
    expect(one.pairs).toBe(N)
    expect(three.pairs).toBe(99_999)
    expect(perPairOne).toBeLessThan(150)
    expect(perPairThree).toBeLessThan(perPairOne)
  })

  it("removing a holder from a shared hash keeps the others", () => {
    const idx = new HolderIndex()
    for (const n of ["a", "b", "c", "d"]) idx.add(n, h1)
    idx.remove("b", h1)
    expect(idx.holdersOf(h1)).toEqual(["a", "c", "d"])
    idx.clear("c")
    expect(idx.holdersOf(h1)).toEqual(["a", "d"])
    idx.clear("a")
    expect(idx.holdersOf(h1)).toEqual(["d"])
    expect(idx.pairs).toBe(1)
  })
})

describe("holders fold", () => {
  it("applies removes before adds, and batches of either kind", () => {
    const [h1, h2] = hashes(2) as [string, string]
    const fold = holdersFold.create()
    fold.apply({ origin: "a", seq: 1, data: { add: [h1, h2], remove: [] } })
    fold.apply({ origin: "a", seq: 2, data: { add: [h2], remove: [h1], kind: "chunk" } })
    expect(fold.state.holdersOf(h1)).toEqual([])
    expect(fold.state.entriesOf("a")).toEqual([{ hash: h2, kind: "chunk" }])
  })

  it("packs snapshot pages as 33 bytes per entry and rejects malformed pages", () => {
    const entries = hashes(100).map((hash, i) => ({ hash, kind: i % 2 ? ("chunk" as const) : ("blob" as const) }))
    const body = encodeEntries(holdersFold.spec, entries)
    expect(body.length).toBe(100 * 33)
    expect(decodeEntries(holdersFold.spec, body)).toEqual(entries)
    expect(decodeEntries(holdersFold.spec, body.subarray(1))).toBeUndefined()
    const badKind = body.slice()
    badKind[0] = 7
    expect(decodeEntries(holdersFold.spec, badKind)).toBeUndefined()
  })

  it("splits a large snapshot into pages under the limit that concatenate to the whole", () => {
    const entries = hashes(40_000).map((hash) => ({ hash, kind: "blob" as const }))
    const pages = paginate(holdersFold.spec, entries, MAX_PAGE_BYTES - 4096)
    expect(pages.length).toBeGreaterThanOrEqual(3)
    expect(pages.every((p) => p.length <= MAX_PAGE_BYTES - 4096)).toBe(true)
    expect(pages.flatMap((p) => decodeEntries(holdersFold.spec, p)!)).toEqual(entries)
  })
})
