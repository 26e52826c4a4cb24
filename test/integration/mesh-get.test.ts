import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, describe, expect, inject, it } from "vitest"
import { type BlobRef, fetchBlob, type ReadSources } from "../../plugin/index.ts"
import { CHUNK_AVG_BYTES, CHUNK_MAX_BYTES, CHUNK_MIN_BYTES } from "../../storage/format/constants.ts"
import { seededBytes } from "../support/bytes.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"
import { until } from "../support/poll.ts"
import { tempDir } from "../support/temp.ts"
import { codeOf, sameBytes } from "../support/expect.ts"

describe("get from the nearest holders over NATS", () => {
  const nodes: TestNode[] = []
  const url = inject("natsUrl")
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop()
  })

  it("a node with nothing gets the right bytes for interesting sizes, then serves a fourth node after the producer left", async () => {
    const prefix = freshPrefix()
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((n) => startNode(url, n, { prefix })))
    nodes.push(a!, b!, c!)
    const sizes = [0, 1, 8103, CHUNK_MIN_BYTES - 1, CHUNK_AVG_BYTES, CHUNK_MAX_BYTES + 1, 3 * CHUNK_MAX_BYTES + 7]
    const payloads = sizes.map((s, i) => seededBytes(s, 50 + i))
    const refs: BlobRef[] = []
    for (const p of payloads) refs.push(await a!.blobs.put(p))
    for (const [i, ref] of refs.entries()) {
      const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
      const got = await c!.blobs.get(ref, { sources })
      expect(sameBytes(got, payloads[i]!), `size ${sizes[i]}`).toBe(true)
      if (sizes[i]! > 0) expect(sources.peers.a ?? 0).toBeGreaterThan(0)
      expect((await c!.blobs.stat(ref)).size).toBe(sizes[i])
    }
    // c is now a holder: the producer leaves, a fourth node gets everything from c (or b, which never had it)
    await a!.stop()
    const d = await startNode(url, "d", { prefix })
    nodes.push(d)
    for (const [i, ref] of refs.entries()) {
      const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
      expect(sameBytes(await d.blobs.get(ref, { sources }), payloads[i]!)).toBe(true)
      if (sizes[i]! > 0) expect(Object.keys(sources.peers)).toEqual(["c"])
    }
  })

  it("fetchBlob makes a blob local and advertised; a second read is served from disk", async () => {
    const prefix = freshPrefix()
    const [a, b] = await Promise.all(["a", "b"].map((n) => startNode(url, n, { prefix })))
    nodes.push(a!, b!)
    const bytes = seededBytes(30 << 20, 3)
    const ref = await a!.blobs.put(bytes)
    const { sources } = await fetchBlob(b!.blobs, ref)
    expect(sources.peers.a).toBeGreaterThanOrEqual(bytes.length)
    await until(() => a!.blobs.mesh!.folds.holdersOf(ref.hex).includes("b"), "a learns b holds it")
    const again: ReadSources = { cache: 0, disk: 0, peers: {} }
    expect(sameBytes(await b!.blobs.get(ref, { sources: again }), bytes)).toBe(true)
    expect(again.peers).toEqual({})
    expect(again.cache + again.disk).toBe(bytes.length)
  })

  it("a streaming read hands out chunks the caller owns, and a big blob streams through without flushing the memory cache", async () => {
    const prefix = freshPrefix()
    const a = await startNode(url, "a", { prefix })
    const b = await startNode(url, "b", { prefix, cacheBytes: 64 << 20 })
    nodes.push(a, b)
    const small = seededBytes(300_000, 4)
    const big = seededBytes(72 << 20, 5) // ~18 chunks: more than the receive pool holds
    const [smallRef, bigRef] = [await a.blobs.put(small), await a.blobs.put(big)]
    await b.blobs.get(smallRef) // now in b's memory cache
    const parts: Uint8Array[] = []
    for await (const part of b.blobs.read(bigRef)) parts.push(part) // kept, not consumed
    expect(parts.length).toBeGreaterThan(12)
    expect(sameBytes(Buffer.concat(parts), big)).toBe(true)
    const again: ReadSources = { cache: 0, disk: 0, peers: {} }
    await b.blobs.get(smallRef, { sources: again })
    expect(again.cache).toBe(small.length)
  })

  it("a streaming read's parts are the caller's to change: changing them leaves the stored blob intact", async () => {
    const prefix = freshPrefix()
    // a small cache: the blob streams past it, so reading it again goes to disk
    const [a, b] = await Promise.all(["a", "b"].map((n) => startNode(url, n, { prefix, cacheBytes: 16 << 20 })))
    nodes.push(a!, b!)
    const bytes = seededBytes(40 << 20, 23)
    const ref = await a!.blobs.put(bytes)
    const parts: Uint8Array[] = []
    for await (const part of b!.blobs.read(ref)) {
      parts.push(part)
      part.fill(0) // at once, while later chunks are still being fetched and written
    }
    expect(parts.length).toBeGreaterThan(4)
    expect(new Set(parts.map((p) => p.buffer)).size).toBe(parts.length) // no buffer shared or reused
    const again: ReadSources = { cache: 0, disk: 0, peers: {} }
    const back = await b!.blobs.get(ref, { sources: again }) // from b's disk, verified
    expect(again.disk).toBe(bytes.length)
    expect(sameBytes(back, bytes)).toBe(true)
  })

  it("getToFile of a many-chunk blob from a peer writes exactly its bytes while reusing the receive buffers", async () => {
    const prefix = freshPrefix()
    const [a, b] = await Promise.all(["a", "b"].map((n) => startNode(url, n, { prefix })))
    nodes.push(a!, b!)
    const bytes = seededBytes(40 << 20, 21)
    const ref = await a!.blobs.put(bytes)
    const dir = await tempDir()
    try {
      const path = join(dir.path, "out.bin")
      const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
      await b!.blobs.getToFile(ref, path, { sources })
      expect(sources.peers.a).toBeGreaterThanOrEqual(bytes.length)
      expect(sameBytes(await readFile(path), bytes)).toBe(true)
    } finally {
      await dir.remove()
    }
  })

  it("a read the caller leaves early gives back its share of the node budget, so later reads still run", async () => {
    const prefix = freshPrefix()
    const a = await startNode(url, "a", { prefix })
    // room for about three chunks node-wide: a leaked reservation would stall the next read
    const b = await startNode(url, "b", { prefix, nodeBudgetBytes: 3 * CHUNK_MAX_BYTES, cacheBytes: 0 })
    nodes.push(a, b)
    const bytes = seededBytes(48 << 20, 33)
    const ref = await a.blobs.put(bytes)
    for (let round = 0; round < 3; round++) {
      for await (const _part of b.blobs.read(ref)) {
        await new Promise((r) => setTimeout(r, 300)) // the chunks read ahead arrive meanwhile
        break
      }
      await until(() => b.blobs.mesh!.bytesInFlight === 0, "the read's budget is given back")
    }
    expect(sameBytes(await b.blobs.get(ref), bytes)).toBe(true)
    expect(b.blobs.mesh!.bytesInFlight).toBe(0)
  })

  it("a streaming read of maximum-size chunks with little read-ahead finishes (chunks take their budget in order)", async () => {
    const prefix = freshPrefix()
    const a = await startNode(url, "a", { prefix })
    // two chunks of read-ahead, six fetches, two background writes: a later chunk must not
    // take the budget the next one in order needs
    const b = await startNode(url, "b", { prefix, readAheadBytes: 2 * CHUNK_MAX_BYTES, cacheBytes: 0 })
    nodes.push(a, b)
    const bytes = new Uint8Array(6 * CHUNK_MAX_BYTES) // zeros: every chunk is cut at the maximum
    const ref = await a.blobs.put(bytes)
    let got = 0
    for await (const part of b.blobs.read(ref)) got += part.length
    expect(got).toBe(bytes.length)
    expect(b.blobs.mesh!.bytesInFlight).toBe(0)
  })

  it("fetchBlob holds at most readAheadBytes of chunks at any moment, fetching or being written", async () => {
    const prefix = freshPrefix()
    const a = await startNode(url, "a", { prefix })
    const readAheadBytes = CHUNK_MAX_BYTES // less than six slots of ~4 MiB chunks would take
    const b = await startNode(url, "b", { prefix, readAheadBytes, cacheBytes: 0 })
    nodes.push(a, b)
    const ref = await a.blobs.put(seededBytes(96 << 20, 41))
    let peak = 0
    const sample = setInterval(() => (peak = Math.max(peak, b.blobs.mesh!.bytesInFlight)), 1)
    try {
      await fetchBlob(b.blobs, ref, { onProgress: () => (peak = Math.max(peak, b.blobs.mesh!.bytesInFlight)) })
    } finally {
      clearInterval(sample)
    }
    expect(peak).toBeGreaterThan(0)
    expect(peak).toBeLessThanOrEqual(readAheadBytes)
    expect(b.blobs.mesh!.bytesInFlight).toBe(0)
    expect(sameBytes(await b.blobs.get(ref), await a.blobs.get(ref))).toBe(true)
  })

  it("no holder anywhere gives NO_HOLDER in bounded time", async () => {
    const prefix = freshPrefix()
    const a = await startNode(url, "a", { prefix, discoveryTimeoutMs: 500 })
    nodes.push(a)
    const started = Date.now()
    expect(await codeOf(a.blobs.get(`df1-chunk-5-${"ab".repeat(32)}`))).toBe("NO_HOLDER")
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it("aborting a read stops the transfer and frees both ends", async () => {
    const prefix = freshPrefix()
    const [a, b] = await Promise.all(["a", "b"].map((n) => startNode(url, n, { prefix })))
    nodes.push(a!, b!)
    const ref = await a!.blobs.put(seededBytes(64 << 20, 9))
    const ctrl = new AbortController()
    let got = 0
    const err = await codeOf(
      (async () => {
        for await (const part of b!.blobs.read(ref, { signal: ctrl.signal })) {
          got += part.length
          if (got > 8 << 20) ctrl.abort()
        }
      })(),
    )
    expect(err).toBe("ABORTED")
    await until(() => a!.blobs.mesh!.sender.stats().activeTransfers === 0, "sender idle", 10_000)
    await until(() => b!.blobs.mesh!.receiver.stats().activeFetches === 0, "receiver idle", 10_000)
    expect(await b!.blobs.store.hasBlob(ref)).toBe(false)
  })
})
