import { afterEach, describe, expect, inject, it } from "vitest"
import type { BlobRef, ReadSources } from "../../plugin/index.ts"
import { seededBytes } from "../support/bytes.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"
import { until } from "../support/poll.ts"

describe("small blobs in batches", () => {
  const nodes: TestNode[] = []
  const url = inject("natsUrl")
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop()
  })

  it("ensureLocal fetches hundreds of small blobs in a few requests, verified", async () => {
    const prefix = freshPrefix()
    const [a, b] = await Promise.all(["a", "b"].map((n) => startNode(url, n, { prefix })))
    nodes.push(a!, b!)
    const payloads = Array.from({ length: 600 }, (_, i) => seededBytes(100 + ((i * 37) % 5000), 7000 + i))
    const refs: BlobRef[] = []
    for (const p of payloads) refs.push(await a!.blobs.put(p))
    await until(() => refs.every((r) => b!.blobs.mesh!.folds.nearestHolders(r.hex).length === 1), "b knows the live holder")
    const servedBefore = a!.blobs.mesh!.sender.stats().transfersStarted
    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    const missing = await b!.blobs.mesh!.ensureLocal(refs, { sources })
    expect(missing).toEqual([])
    expect(sources.peers.a).toBe(payloads.reduce((n, p) => n + p.length, 0))
    // no streaming transfer was needed
    expect(a!.blobs.mesh!.sender.stats().transfersStarted).toBe(servedBefore)
    for (const [i, r] of refs.entries()) expect(Buffer.from(await b!.blobs.get(r)).equals(payloads[i]!)).toBe(true)
  })

  it("a holder answering a batch with corrupt bytes is blamed and nothing is stored; an honest holder then serves them", async () => {
    const prefix = freshPrefix()
    const [liar, honest, reader] = await Promise.all(["liar", "honest", "reader"].map((n) => startNode(url, n, { prefix })))
    nodes.push(liar!, honest!, reader!)
    const payloads = Array.from({ length: 20 }, (_, i) => seededBytes(3000, 100 + i))
    const refs: BlobRef[] = []
    for (const p of payloads) refs.push(await liar!.blobs.put(p))
    // the liar's small chunks live in its LevelDB: overwrite them with junk of the same size
    const db = (liar!.blobs.store.index as unknown as { db: { put(k: string, v: Uint8Array): Promise<void> } }).db
    for (const r of refs) await db.put(`c!${r.hex}`, seededBytes(r.size, 1))
    await until(() => refs.every((r) => reader!.blobs.mesh!.folds.nearestHolders(r.hex).length === 1), "reader knows the liar is live")
    const missing = await reader!.blobs.mesh!.ensureLocal(refs)
    expect(missing.length).toBe(refs.length)
    expect(reader!.blobs.mesh!.holderFailures.INTEGRITY).toBe(refs.length)
    for (const r of refs) expect(await reader!.blobs.store.hasBlob(r)).toBe(false)
    // an honest holder of the same bytes appears: the batch now comes from it
    for (const p of payloads) await honest!.blobs.put(p)
    await until(() => refs.every((r) => reader!.blobs.mesh!.folds.nearestHolders(r.hex).length === 2), "reader knows both holders are live")
    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    expect(await reader!.blobs.mesh!.ensureLocal(refs, { sources })).toEqual([])
    expect(Object.keys(sources.peers)).toEqual(["honest"])
    for (const [i, r] of refs.entries()) expect(Buffer.from(await reader!.blobs.get(r)).equals(payloads[i]!)).toBe(true)
  })
})
