import type { NatsConnection } from "@nats-io/nats-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { MIB } from "../../storage/format/constants.ts"
import { defaultHashBackend, type HashBackend } from "../../storage/format/hasher.ts"
import { fromHex } from "../../storage/format/hex.ts"
import { decodeHolderFrame, encodeReq } from "../../transfer/frames.ts"
import { ChunkReceiver, fetchChunk, receiverFor, startSender } from "../../transfer/index.ts"
import { holderSubject } from "../../transfer/subjects.ts"
import { until } from "../support/poll.ts"
import { MemorySource, chunkOf, connectNats, sameBytes, statusListenerCount, subscriptionCount, timerCount, uniquePrefix } from "./transfer-support.ts"

let hb: HashBackend
let holderNc: NatsConnection
let nc: NatsConnection

beforeAll(async () => {
  hb = await defaultHashBackend()
  holderNc = await connectNats()
  nc = await connectNats()
})
afterAll(async () => {
  await holderNc.close()
  await nc.close()
})

describe("transfer lifecycle", () => {
  it("aborting a fetch rejects with ABORTED and both ends free their state", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(16 * MIB, 21, hb)
    const source = new MemorySource({ gateAt: 2 * MIB }).add(hash, bytes)
    // a long idle drop: only the receiver's CANCEL can explain a prompt release
    const sender = startSender(holderNc, { prefix, node: "h1", source, idleDropMs: 60_000 })
    await holderNc.flush()
    const subsBefore = subscriptionCount(nc)
    const controller = new AbortController()
    let received = 0
    const pending = fetchChunk(nc, { prefix, hash, holders: ["h1"], hashBackend: hb, signal: controller.signal, onBytes: (n) => (received += n) })
    await until(() => received >= MIB, "first MiB received")
    expect(sender.stats().activeTransfers).toBe(1)
    controller.abort(new Error("user gave up"))
    await expect(pending).rejects.toMatchObject({ code: "ABORTED" })
    expect(receiverFor(nc, prefix).stats().activeFetches).toBe(0)
    expect(subscriptionCount(nc)).toBe(subsBefore)
    await until(() => sender.stats().activeTransfers === 0, "holder released the cancelled transfer", 5_000)
    expect(sender.stats().transfersDropped).toBe(1)
    source.release() // the in-flight read completes; the reader is then closed
    await until(() => source.openReaders === 0, "reader closed")
    await sender.close()
  })

  it("an already aborted signal rejects with ABORTED before anything is sent", async () => {
    const prefix = uniquePrefix()
    const { hash } = chunkOf(10, 22, hb)
    await expect(fetchChunk(nc, { prefix, hash, holders: ["h1"], hashBackend: hb, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "ABORTED" })
  })

  it("200 concurrent transfers from two holders all verify, and everything returns to baseline", async () => {
    const prefix = uniquePrefix()
    const a = new MemorySource()
    const b = new MemorySource()
    const chunks = Array.from({ length: 200 }, (_, i) => chunkOf(i % 40 === 0 ? 2 * MIB + i : 1 + ((i * 104_729) % (160 * 1024)), 100 + i, hb))
    chunks.forEach((c, i) => (i % 2 === 0 ? a : b).add(c.hash, c.bytes))
    // 'b' also holds every chunk, so both serve in parallel and share their links
    for (const c of chunks) b.add(c.hash, c.bytes)
    const sa = startSender(holderNc, { prefix, node: "a", source: a })
    const sb = startSender(holderNc, { prefix, node: "b", source: b })
    await holderNc.flush()
    const subsBefore = subscriptionCount(nc)
    const listenersBefore = statusListenerCount(nc)
    const timersBefore = timerCount()
    const results = await Promise.all(chunks.map((c, i) => fetchChunk(nc, { prefix, hash: c.hash, holders: i % 2 === 0 ? ["a", "b"] : ["b"], hashBackend: hb })))
    results.forEach((bytes, i) => expect(sameBytes(bytes, chunks[i]!.bytes), `chunk ${i}`).toBe(true))
    expect(receiverFor(nc, prefix).stats()).toMatchObject({ activeFetches: 0, fetchesFailed: 0 })
    expect(subscriptionCount(nc)).toBe(subsBefore)
    await until(() => statusListenerCount(nc) === listenersBefore, "status watcher stopped")
    await until(() => sa.stats().activeTransfers + sb.stats().activeTransfers === 0, "senders idle")
    expect(sa.stats().transfersCompleted + sb.stats().transfersCompleted).toBe(200)
    await until(() => a.openReaders + b.openReaders === 0, "all readers closed")
    await until(() => timerCount() <= timersBefore, "timers back to baseline")
    await sa.close()
    await sb.close()
  })

  it("the holder drops a transfer whose receiver stops crediting, and releases its reader", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(4 * MIB, 23, hb)
    const source = new MemorySource().add(hash, bytes)
    const sender = startSender(holderNc, { prefix, node: "h1", source, idleDropMs: 300 })
    await holderNc.flush()
    // a receiver that asks with one frame of credit and then goes silent
    const inbox = `${prefix}.silent`
    const frames: string[] = []
    const sub = nc.subscribe(inbox, { callback: (_e, m) => void frames.push(decodeHolderFrame(m.data).type) })
    nc.publish(holderSubject(prefix, "h1"), encodeReq(fromHex(hash)!, 0, 8102, 16 * MIB), { reply: inbox })
    await until(() => sender.stats().transfersDropped === 1, "idle transfer dropped", 5_000)
    expect(sender.stats().activeTransfers).toBe(0)
    expect(sender.stats().bytesServed).toBe(8102) // never past the credit
    expect(frames).toEqual(["head", "data"])
    await until(() => source.openReaders === 0, "reader closed")
    sub.unsubscribe()
    await sender.close()
  })

  it("closing a sender answers its active transfers with CLOSED so receivers move on at once", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(8 * MIB, 24, hb)
    const stuck = new MemorySource({ gateAt: MIB }).add(hash, bytes)
    const closing = startSender(holderNc, { prefix, node: "closing", source: stuck })
    const other = startSender(holderNc, { prefix, node: "other", source: new MemorySource().add(hash, bytes) })
    await holderNc.flush()
    let fromClosing = 0
    const pending = fetchChunk(nc, { prefix, hash, holders: ["closing", "other"], hashBackend: hb, idleTimeoutMs: 60_000, onBytes: (n, h) => void (h === "closing" && (fromClosing += n)) })
    await until(() => fromClosing >= MIB, "first MiB from the closing holder")
    const closed = closing.close()
    stuck.release()
    await closed
    await closing.close() // idempotent
    expect(sameBytes(await pending, bytes)).toBe(true)
    expect(closing.stats().activeTransfers).toBe(0)
    await other.close()
  })

  it("closing a receiver rejects its active fetches with CLOSED and drops its subscription", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(4 * MIB, 25, hb)
    const stuck = new MemorySource({ gateAt: MIB }).add(hash, bytes)
    const sender = startSender(holderNc, { prefix, node: "h1", source: stuck })
    await holderNc.flush()
    const subsBefore = subscriptionCount(nc)
    const receiver = new ChunkReceiver(nc, { prefix })
    const pending = receiver.fetch({ hash, holders: ["h1"], hashBackend: hb })
    await until(() => receiver.stats().bytesReceived >= MIB, "first MiB")
    await receiver.close()
    await expect(pending).rejects.toMatchObject({ code: "CLOSED" })
    await expect(receiver.fetch({ hash, holders: ["h1"], hashBackend: hb })).rejects.toMatchObject({ code: "CLOSED" })
    expect(subscriptionCount(nc)).toBe(subsBefore)
    await until(() => sender.stats().activeTransfers === 0, "holder released it")
    stuck.release()
    await sender.close()
  })
})
