import { describe, expect, it } from "vitest"
import { BlobRef, type DirEntry, type DirManifest } from "../../plugin/index.ts"
import { resolveTreeLimits } from "../../plugin/tree-limits.ts"
import { LruMap, type SubtreeStats, treeStats } from "../../plugin/tree-stats.ts"
import { codeOf } from "../support/expect.ts"

/** An in-memory DAG of manifests keyed by made-up dir refs: no store needed for the pure computation. */
function dag() {
  const manifests = new Map<string, DirManifest>()
  let n = 0
  const hash = (i: number) => Uint8Array.from({ length: 32 }, (_, k) => (i >> (8 * (k % 4))) & 0xff)
  return {
    dir(entries: DirEntry[]): BlobRef {
      const ref = BlobRef.of("dir", 100 + n, hash(++n))
      manifests.set(ref.hex, { entries })
      return ref
    },
    file(size: number): BlobRef {
      return BlobRef.of(size > 1000 ? "manifest" : "chunk", size, hash(1_000_000 + ++n))
    },
    loads: [] as string[],
    load(ref: BlobRef): Promise<DirManifest> {
      this.loads.push(ref.hex)
      return Promise.resolve(manifests.get(ref.hex)!)
    },
  }
}

const sub = (name: string, ref: BlobRef): DirEntry => ({ name, kind: "dir", mode: 0o755, ref })
const file = (name: string, ref: BlobRef): DirEntry => ({ name, kind: "file", mode: 0o644, ref })

describe("treeStats: the expanded tree's size over the DAG of distinct manifests", () => {
  it("counts a subdirectory named many times that many times, loading it once", async () => {
    const g = dag()
    const leaf = g.dir([file("a", g.file(10)), file("b", g.file(5)), { name: "l", kind: "symlink", mode: 0o777, target: "a" }])
    const mid = g.dir(Array.from({ length: 100 }, (_, i) => sub(`m${i}`, leaf)))
    const root = g.dir([sub("x", mid), sub("y", mid), file("z", g.file(7))])
    const stats = await treeStats(root, (r) => g.load(r), resolveTreeLimits({}))
    // root: 3 entries; mid ×2: 100 entries each; leaf ×200: 3 entries each
    expect(stats).toEqual({ entries: 3 + 200 + 600, files: 1 + 400, bytes: 7 + 200 * 15, height: 2 })
    expect(g.loads.length).toBe(3)
  })

  it("names the limit that was passed, and stops loading once it is", async () => {
    const g = dag()
    const leaf = g.dir([file("a", g.file(10))])
    const wide = g.dir(Array.from({ length: 1000 }, (_, i) => sub(`d${i}`, leaf)))
    const err = await treeStats(wide, (r) => g.load(r), resolveTreeLimits({ maxEntries: 1500 })).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: "TOO_LARGE", what: "tree entries", limit: 1500 })
    const huge = g.dir([file("big", g.file(2 ** 41)), sub("never", leaf)])
    g.loads.length = 0
    expect(await treeStats(huge, (r) => g.load(r), resolveTreeLimits({})).catch((e: unknown) => e)).toMatchObject({ code: "TOO_LARGE", what: "tree bytes" })
    // refused on the root's own files, before its subdirectory was loaded
    expect(g.loads).toEqual([huge.hex])
    let deep = g.dir([])
    for (let i = 0; i < 5; i++) deep = g.dir([sub("d", deep)])
    expect(await treeStats(deep, (r) => g.load(r), resolveTreeLimits({ maxDepth: 5 }))).toMatchObject({ height: 5 })
    expect(await treeStats(deep, (r) => g.load(r), resolveTreeLimits({ maxDepth: 4 })).catch((e: unknown) => e)).toMatchObject({ what: "tree depth", limit: 4 })
  })

  it("catches a deep subtree met shallow first (memoized) and then deeper", async () => {
    const g = dag()
    let chain = g.dir([])
    for (let i = 0; i < 3; i++) chain = g.dir([sub("c", chain)])
    // "a" names the 3-deep chain at depth 1 (total 4), "b" at depth 3 (total 6)
    const b = g.dir([sub("b1", g.dir([sub("b2", chain)]))])
    const root = g.dir([sub("a", chain), sub("b", b)])
    expect(await treeStats(root, (r) => g.load(r), resolveTreeLimits({ maxDepth: 6 }))).toMatchObject({ height: 6 })
    expect(await codeOf(treeStats(root, (r) => g.load(r), resolveTreeLimits({ maxDepth: 5 })))).toBe("TOO_LARGE")
  })

  it("gives the same answer with a memo of one directory (recomputing), and its loads stay within the expanded entries", async () => {
    const g = dag()
    const leaves = Array.from({ length: 4 }, (_, i) => g.dir([file(`f${i}`, g.file(i + 1)), file("g", g.file(3))]))
    const mids = Array.from({ length: 3 }, (_, i) => g.dir(leaves.slice(i).map((l, k) => sub(`l${k}`, l))))
    const root = g.dir(mids.flatMap((m, i) => [sub(`a${i}`, m), sub(`b${i}`, m)]))
    const full = await treeStats(root, (r) => g.load(r), resolveTreeLimits({}))
    const loadsWithMemo = g.loads.length
    g.loads.length = 0
    const tiny = await treeStats(root, (r) => g.load(r), resolveTreeLimits({}), { memo: new LruMap<string, SubtreeStats>(1) })
    expect(tiny).toEqual(full)
    expect(loadsWithMemo).toBe(1 + 3 + 4)
    expect(g.loads.length).toBeGreaterThan(loadsWithMemo)
    expect(g.loads.length).toBeLessThanOrEqual(full.entries)
  })
})

describe("LruMap", () => {
  it("forgets the least recently used keys past its weight", () => {
    const m = new LruMap<string, number[]>(5, (v) => v.length)
    m.set("a", [1, 2])
    m.set("b", [1, 2])
    expect(m.get("a")).toEqual([1, 2]) // a is now the newest
    m.set("c", [1, 2]) // 6 > 5: b goes
    expect(m.get("b")).toBeUndefined()
    expect(m.get("a")).toEqual([1, 2])
    m.set("huge", [1, 2, 3, 4, 5, 6]) // heavier than the whole map: not kept, nothing evicted
    expect(m.get("huge")).toBeUndefined()
    expect(m.size).toBe(2)
  })
})
