import { mkdir, readdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { BlobRef, DEFAULT_TREE_LIMITS, fetchDir, type ReadSources, TooLargeError, walkDir } from "../../plugin/index.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"
import { until } from "../support/poll.ts"
import { tempDir } from "../support/temp.ts"
import { describeTree } from "../support/tree.ts"
import { chain, describeFile, heapWatch, nameOf, putDir, repeatedSubdir } from "../support/hostile-tree.ts"

const MiB = 1 << 20
const peerBytes = (s: ReadSources) => Object.values(s.peers).reduce((a, b) => a + b, 0)

/** The TooLargeError a call fails with (anything else fails the test). */
async function tooLarge(p: Promise<unknown>): Promise<TooLargeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect((err as { code?: string } | undefined)?.code).toBe("TOO_LARGE")
  return err as TooLargeError
}

/**
 * Hostile roots published by a producer node and fetched by a consumer node over the real
 * nats-server: a small manifest that expands into millions of entries, a deep chain, a
 * forged file size. Each is refused (TOO_LARGE naming the limit) before anything is
 * written, with bounded memory; a repeated subdirectory within limits is materialized each
 * time it is named but crosses the wire once.
 */
describe("fetchDir and walkDir on hostile trees between two nodes", () => {
  const url = inject("natsUrl")
  let producer: TestNode
  let consumer: TestNode
  let tmp: { path: string; remove(): Promise<void> }
  beforeAll(async () => {
    const prefix = freshPrefix()
    producer = await startNode(url, "producer", { prefix })
    consumer = await startNode(url, "consumer", { prefix })
    tmp = await tempDir("df-dirs-bounds-")
  })
  afterAll(async () => {
    await consumer?.stop()
    await producer?.stop()
    await tmp?.remove()
  })

  /** Waits until the consumer knows the producer holds `ref` (as a real consumer of a published ref would). */
  const published = (ref: BlobRef) => until(() => consumer.blobs.mesh!.folds.nearestHolders(ref.hex).length > 0, "the consumer sees the producer's ref")

  it("refuses 100,000 names of one 10-file subdirectory (1.1M entries) over maxEntries 500,000 before writing anything, with small heap growth", async () => {
    const { root } = await repeatedSubdir(producer.blobs, 100_000, 10)
    await published(root)
    const dest = join(tmp.path, "bomb")
    const heap = heapWatch()
    const rss = process.memoryUsage().rss
    const err = await tooLarge(fetchDir(consumer.blobs, root, dest, { limits: { maxEntries: 500_000 } }))
    const growth = heap.stop()
    console.log(`1.1M-entry bomb refused: heap growth ${(growth / MiB).toFixed(1)} MiB, rss growth ${((process.memoryUsage().rss - rss) / MiB).toFixed(1)} MiB`)
    expect(err.what).toBe("tree entries")
    expect(growth).toBeLessThan(200 * MiB)
    expect(await readdir(tmp.path)).toEqual([])
  }, 60_000)

  it("materializes 1,000 names of one 10-file subdirectory exactly, the subdirectory's manifest and files crossing the wire once", async () => {
    const { root, sub, contents } = await repeatedSubdir(producer.blobs, 1_000, 10, 1)
    await published(root)
    const dest = join(tmp.path, "repeated")
    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    const progress: Array<{ items?: number; totalItems?: number; bytes: number; totalBytes?: number }> = []
    const started = performance.now()
    await fetchDir(consumer.blobs, root, dest, { sources, onProgress: (p) => progress.push(p) })
    console.log(`10,000 files (1,000 × 10) materialized in ${(performance.now() - started).toFixed(0)} ms`)
    const model: Record<string, string> = {}
    for (let d = 0; d < 1_000; d++) {
      model[nameOf("d", d)] = "dir 755"
      contents.forEach((bytes, f) => (model[`${nameOf("d", d)}/${nameOf("f", f, 3)}`] = describeFile(bytes, 0o644)))
    }
    expect(await describeTree(dest)).toEqual(model)
    // root manifest + subdirectory manifest + each file's bytes, once
    const fileBytes = contents.reduce((n, b) => n + b.length, 0)
    expect(peerBytes(sources)).toBe(root.size + sub.size + fileBytes)
    expect(progress.at(-1)).toEqual({ bytes: 1_000 * fileBytes, totalBytes: 1_000 * fileBytes, items: 10_000, totalItems: 10_000 })
    expect((await readdir(tmp.path)).filter((n) => n.includes(".df-"))).toEqual([])
  }, 60_000)

  it(`refuses a chain of 300 nested directories with the default depth limit (${DEFAULT_TREE_LIMITS.maxDepth}), and materializes one of 200`, async () => {
    const deep = await chain(producer.blobs, 300)
    const ok = await chain(producer.blobs, 200)
    await published(deep)
    await published(ok)
    const err = await tooLarge(fetchDir(consumer.blobs, deep, join(tmp.path, "deep")))
    expect(err.what).toBe("tree depth")
    expect(err.limit).toBe(256)
    const dest = join(tmp.path, "ok")
    await fetchDir(consumer.blobs, ok, dest)
    const tree = await describeTree(dest)
    expect(Object.keys(tree).length).toBe(200)
    expect(tree[Array(200).fill("d").join("/")]).toBe("dir 755")
    expect((await readdir(tmp.path)).filter((n) => n.startsWith("deep") || n.includes(".df-"))).toEqual([])
  }, 60_000)

  it("refuses a file ref claiming 2 TiB by the bytes limit before fetching any file", async () => {
    const small = await producer.blobs.put(new TextEncoder().encode("real bytes"))
    const forged = BlobRef.of("manifest", 2 * 2 ** 40, new Uint8Array(32).fill(9))
    const root = await putDir(producer.blobs, [
      { name: "a-real", kind: "file", mode: 0o644, ref: small },
      { name: "b-huge", kind: "file", mode: 0o644, ref: forged },
    ])
    await published(root)
    const dest = join(tmp.path, "forged")
    await mkdir(dest)
    await writeFile(join(dest, "keep.txt"), "old")
    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    const err = await tooLarge(fetchDir(consumer.blobs, root, dest, { sources }))
    expect(err.what).toBe("tree bytes")
    expect(err.limit).toBe(2 ** 40)
    // only the root manifest crossed the wire; dest is as it was
    expect(peerBytes(sources)).toBe(root.size)
    expect(await consumer.blobs.store.hasBlob(small)).toBe(false)
    expect(await readdir(dest)).toEqual(["keep.txt"])
    expect((await readdir(tmp.path)).filter((n) => n.includes(".df-"))).toEqual([])
  }, 60_000)

  it("walkDir streams a 1,000 × 1,000 DAG (1,001,000 entries) with small heap growth", async () => {
    const files: Array<{ name: string; kind: "file"; mode: number; ref: BlobRef }> = []
    const one = await producer.blobs.put(new TextEncoder().encode("x"))
    for (let i = 0; i < 1_000; i++) files.push({ name: nameOf("f", i, 4), kind: "file", mode: 0o644, ref: one })
    const sub = await putDir(producer.blobs, files)
    const dirs = []
    for (let i = 0; i < 1_000; i++) dirs.push({ name: nameOf("d", i, 4), kind: "dir" as const, mode: 0o755, ref: sub })
    const top = await putDir(producer.blobs, dirs)
    await published(top)
    const heap = heapWatch()
    let count = 0
    let lastPath = ""
    for await (const e of walkDir(consumer.blobs, top)) {
      count++
      lastPath = e.path
    }
    const growth = heap.stop()
    console.log(`walkDir over 1,001,000 entries: heap growth ${(growth / MiB).toFixed(1)} MiB`)
    expect(count).toBe(1_001_000)
    expect(lastPath).toBe("d0999/f0999")
    expect(growth).toBeLessThan(200 * MiB)
    // the same walk stops at a lower entry limit
    const err = await tooLarge((async () => {
      for await (const _ of walkDir(consumer.blobs, top, { limits: { maxEntries: 50_000 } }));
    })())
    expect(err.what).toBe("tree entries")
  }, 120_000)
})
