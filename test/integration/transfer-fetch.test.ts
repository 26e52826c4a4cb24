import type { Msg, NatsConnection } from "@nats-io/nats-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { MIB } from "../../storage/format/constants.ts"
import { defaultHashBackend, type HashBackend } from "../../storage/format/hasher.ts"
import { DATA_MAX_PAYLOAD } from "../../transfer/constants.ts"
import { decodeControl, encodeData, encodeDataFrom, encodeFin, encodeHead } from "../../transfer/frames.ts"
import { fetchChunk, fetchChunkReport, startSender, type Sender } from "../../transfer/index.ts"
import { holderSubject } from "../../transfer/subjects.ts"
import { until } from "../support/poll.ts"
import { MemorySource, chunkOf, connectNats, sameBytes, uniquePrefix } from "./transfer-support.ts"

let hb: HashBackend
let holderNc: NatsConnection
let nc: NatsConnection
const senders: Sender[] = []

beforeAll(async () => {
  hb = await defaultHashBackend()
  holderNc = await connectNats()
  nc = await connectNats()
})
afterAll(async () => {
  await Promise.all(senders.map((s) => s.close()))
  await holderNc.close()
  await nc.close()
})

async function holder(prefix: string, node: string, source: MemorySource, conn = holderNc, idleDropMs?: number): Promise<Sender> {
  const s = startSender(conn, { prefix, node, source, ...(idleDropMs === undefined ? {} : { idleDropMs }) })
  senders.push(s)
  await conn.flush()
  return s
}

/**
 * A hand-written holder speaking the wire format directly, for misbehaviour the real
 * sender never shows. `answer` gets each REQ and the reply subject.
 */
async function fakeHolder(prefix: string, node: string, answer: (req: ReturnType<typeof decodeControl> & { type: "req" }, reply: string) => void) {
  const sub = holderNc.subscribe(holderSubject(prefix, node), {
    callback: (_err, msg: Msg) => {
      const m = decodeControl(msg.data)
      if (m.type === "req" && msg.reply) answer(m, msg.reply)
    },
  })
  await holderNc.flush()
  return sub
}

describe("fetchChunk round trips", () => {
  it.each([0, 1, DATA_MAX_PAYLOAD - 1, DATA_MAX_PAYLOAD, DATA_MAX_PAYLOAD + 1, 8104, 2 * DATA_MAX_PAYLOAD + 1, MIB + 7, 16 * MIB])(
    "a %i-byte chunk arrives verified and byte-identical",
    async (size) => {
      const prefix = uniquePrefix()
      const { bytes, hash } = chunkOf(size, size + 11, hb)
      const sender = await holder(prefix, "h1", new MemorySource().add(hash, bytes))
      const report = await fetchChunkReport(nc, { prefix, hash, holders: ["h1"], hashBackend: hb, expectedLength: size })
      expect(sameBytes(report.bytes, bytes)).toBe(true)
      expect(report.attempts).toBe(1)
      expect(report.servedBy.get("h1") ?? 0).toBe(size)
      await until(() => sender.stats().activeTransfers === 0, "sender idle")
      // the default window is whole frames, so every frame went out in a PUB-record run
      const frames = Math.ceil(size / DATA_MAX_PAYLOAD)
      expect(sender.stats()).toMatchObject({ transfersCompleted: 1, bytesServed: size, framesSent: frames, framesWrittenDirect: frames })
    },
  )

  it.each([DATA_MAX_PAYLOAD, 10_000, 3 * DATA_MAX_PAYLOAD + 17])("a credit window of %i bytes (cutting frames mid-way) still delivers every byte in order", async (window) => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(600_001, window, hb)
    const sender = await holder(prefix, "h1", new MemorySource().add(hash, bytes))
    const report = await fetchChunkReport(nc, { prefix, hash, holders: ["h1"], hashBackend: hb, window })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    expect(report.attempts).toBe(1)
    await until(() => sender.stats().activeTransfers === 0, "sender idle")
  })

  it("a holder that does not have the chunk answers NOT_FOUND and the next holder serves it", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(50_000, 3, hb)
    await holder(prefix, "empty", new MemorySource())
    await holder(prefix, "full", new MemorySource().add(hash, bytes))
    const report = await fetchChunkReport(nc, { prefix, hash, holders: ["empty", "full"], hashBackend: hb })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    expect(report.failures.map((f) => [f.holder, f.error.code])).toEqual([["empty", "NOT_FOUND"]])
  })
})

describe("fetchChunk against faulty holders", () => {
  it("bytes from a corrupt holder are detected, that holder is blamed, and the honest holder completes the read", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(300_000, 5, hb)
    await holder(prefix, "corrupt", new MemorySource({ corrupt: true }).add(hash, bytes))
    await holder(prefix, "honest", new MemorySource().add(hash, bytes))
    const blamed: string[] = []
    const report = await fetchChunkReport(nc, {
      prefix,
      hash,
      holders: ["corrupt", "honest"],
      hashBackend: hb,
      onHolderFailure: (h, e) => blamed.push(`${h}:${e.code}`),
    })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    expect(blamed).toEqual(["corrupt:INTEGRITY"])
    expect(report.servedBy.get("honest")).toBe(bytes.length)
  })

  it("only corrupt holders: NO_HOLDER, never the corrupt bytes", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(10_000, 6, hb)
    await holder(prefix, "c1", new MemorySource({ corrupt: true }).add(hash, bytes))
    await expect(fetchChunk(nc, { prefix, hash, holders: ["c1"], hashBackend: hb })).rejects.toMatchObject({ code: "NO_HOLDER" })
  })

  it("a holder whose source claims more than 16 MiB is refused (TOO_LARGE) and the honest holder is used", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(20_000, 7, hb)
    await holder(prefix, "liar", new MemorySource({ claimLength: 64 * MIB }).add(hash, bytes))
    await holder(prefix, "honest", new MemorySource().add(hash, bytes))
    const report = await fetchChunkReport(nc, { prefix, hash, holders: ["liar", "honest"], hashBackend: hb })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    expect(report.failures.map((f) => [f.holder, f.error.code])).toEqual([["liar", "TOO_LARGE"]])
  })

  it("a holder announcing more than 16 MiB on the wire is cut off at once and the honest holder is used", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(20_000, 8, hb)
    let liarFrames = 0
    let cancelled = false
    const liar = holderNc.subscribe(holderSubject(prefix, "liar"), {
      callback: (_e, msg) => {
        const m = decodeControl(msg.data)
        if (m.type === "cancel") cancelled = true
        if (m.type !== "req" || !msg.reply) return
        holderNc.publish(msg.reply, encodeHead(16 * MIB + 1))
        for (let i = 0; i < 4; i++, liarFrames++) holderNc.publish(msg.reply, encodeData(i * DATA_MAX_PAYLOAD, new Uint8Array(DATA_MAX_PAYLOAD)))
      },
    })
    await holder(prefix, "honest", new MemorySource().add(hash, bytes))
    const report = await fetchChunkReport(nc, { prefix, hash, holders: ["liar", "honest"], hashBackend: hb })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    expect(report.failures.map((f) => [f.holder, f.error.code])).toEqual([["liar", "TOO_LARGE"]])
    expect(report.servedBy.get("liar")).toBeUndefined()
    await until(() => cancelled, "liar told to stop")
    expect(liarFrames).toBe(4)
    liar.unsubscribe()
  })

  it("a holder sending data past the length it announced (or than expected) is cut off", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(20_000, 9, hb)
    const sub = await fakeHolder(prefix, "overrun", (_req, reply) => {
      holderNc.publish(reply, encodeHead(bytes.length))
      holderNc.publish(reply, encodeDataFrom(0, bytes, 0, DATA_MAX_PAYLOAD))
      holderNc.publish(reply, encodeDataFrom(DATA_MAX_PAYLOAD, bytes, DATA_MAX_PAYLOAD, 2 * DATA_MAX_PAYLOAD))
      holderNc.publish(reply, encodeData(2 * DATA_MAX_PAYLOAD, new Uint8Array(DATA_MAX_PAYLOAD))) // runs past 20 000
    })
    const small = await fakeHolder(prefix, "short", (_req, reply) => holderNc.publish(reply, encodeHead(10)))
    await holder(prefix, "honest", new MemorySource().add(hash, bytes))
    const report = await fetchChunkReport(nc, { prefix, hash, holders: ["overrun", "short", "honest"], hashBackend: hb, expectedLength: bytes.length })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    expect(report.failures.map((f) => [f.holder, f.error.code])).toEqual([
      ["overrun", "TOO_LARGE"],
      ["short", "PROTOCOL"],
    ])
    // the honest holder resumed where the overrunning one left off
    expect(report.servedBy.get("overrun")).toBe(2 * DATA_MAX_PAYLOAD)
    expect(report.servedBy.get("honest")).toBe(bytes.length - 2 * DATA_MAX_PAYLOAD)
    sub.unsubscribe()
    small.unsubscribe()
  })

  it("a gap in the offsets (lost frames) is re-requested from the last contiguous offset", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(5 * DATA_MAX_PAYLOAD, 10, hb)
    const offsets: number[] = []
    const sub = await fakeHolder(prefix, "lossy", (req, reply) => {
      offsets.push(req.offset)
      holderNc.publish(reply, encodeHead(bytes.length))
      for (let off = req.offset; off < bytes.length; off += DATA_MAX_PAYLOAD) {
        // the first answer loses frame 2, as after a silent reconnect
        if (offsets.length === 1 && off === 2 * DATA_MAX_PAYLOAD) continue
        holderNc.publish(reply, encodeDataFrom(off, bytes, off, Math.min(bytes.length, off + DATA_MAX_PAYLOAD)))
      }
      holderNc.publish(reply, encodeFin(bytes.length, Uint8Array.from(Buffer.from(hash, "hex"))))
    })
    const report = await fetchChunkReport(nc, { prefix, hash, holders: ["lossy"], hashBackend: hb })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    expect(offsets).toEqual([0, 2 * DATA_MAX_PAYLOAD])
    expect(report.servedBy.get("lossy")).toBe(bytes.length)
    sub.unsubscribe()
  })

  it("a holder that dies mid-transfer: the read resumes from the other holder at the last offset", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(16 * MIB, 12, hb)
    const dyingNc = await connectNats()
    // reads past 2 MiB never complete, so the transfer is stuck mid-way when the holder dies
    const stuck = new MemorySource({ gateAt: 2 * MIB }).add(hash, bytes)
    await holder(prefix, "dying", stuck, dyingNc)
    await holder(prefix, "other", new MemorySource().add(hash, bytes))
    let fromDying = 0
    const pending = fetchChunkReport(nc, {
      prefix,
      hash,
      holders: ["dying", "other"],
      hashBackend: hb,
      idleTimeoutMs: 1_000,
      onBytes: (n, h) => {
        if (h === "dying") fromDying += n
      },
    })
    await until(() => fromDying >= MIB, "first MiB from the dying holder")
    await dyingNc.close()
    const report = await pending
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    const dying = report.servedBy.get("dying")!
    expect(dying).toBeGreaterThanOrEqual(MIB)
    // no restart from 0: the other holder sent exactly the rest
    expect(report.servedBy.get("other")).toBe(bytes.length - dying)
    expect(report.failures.map((f) => [f.holder, f.error.code])).toEqual([["dying", "TIMEOUT"]])
    stuck.release()
  })

  it("no holder at all: NO_HOLDER in bounded time", async () => {
    const prefix = uniquePrefix()
    const { hash } = chunkOf(100, 13, hb)
    const t0 = Date.now()
    await expect(fetchChunk(nc, { prefix, hash, holders: ["ghost1", "ghost2"], hashBackend: hb })).rejects.toMatchObject({ code: "NO_HOLDER" })
    await expect(fetchChunk(nc, { prefix, hash, holders: [], hashBackend: hb })).rejects.toMatchObject({ code: "NO_HOLDER" })
    expect(Date.now() - t0).toBeLessThan(2_000)
  })

  it("a holder that listens but never answers: NO_HOLDER after the idle timeout", async () => {
    const prefix = uniquePrefix()
    const { hash } = chunkOf(100, 14, hb)
    const sub = await fakeHolder(prefix, "mute", () => {})
    const t0 = Date.now()
    await expect(fetchChunk(nc, { prefix, hash, holders: ["mute"], hashBackend: hb, idleTimeoutMs: 300 })).rejects.toMatchObject({ code: "NO_HOLDER" })
    expect(Date.now() - t0).toBeLessThan(3_000)
    sub.unsubscribe()
  })

  it("holders given as a function are re-read when choosing the next holder", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(40_000, 15, hb)
    await holder(prefix, "late", new MemorySource().add(hash, bytes))
    let calls = 0
    const holders = () => (++calls === 1 ? ["ghost"] : ["ghost", "late"])
    const report = await fetchChunkReport(nc, { prefix, hash, holders, hashBackend: hb })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    expect(calls).toBe(2)
  })
})
