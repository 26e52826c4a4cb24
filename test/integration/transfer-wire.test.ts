import type { NatsConnection } from "@nats-io/nats-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { MIB } from "../../storage/format/constants.ts"
import { defaultHashBackend, type HashBackend } from "../../storage/format/hasher.ts"
import { DATA_MAX_PAYLOAD } from "../../transfer/constants.ts"
import { fetchChunkReport, receiverFor, startSender, type Sender } from "../../transfer/index.ts"
import { connect } from "@nats-io/transport-node"
import { until } from "../support/poll.ts"
import { startSlowLink } from "../support/slow-link.ts"
import { MemorySource, chunkOf, connectNats, natsUrl, sameBytes, uniquePrefix } from "./transfer-support.ts"

/**
 * The holder writes runs of whole frames to the socket as PUB records, reaching into nats.js
 * internals (transfer/nats-wire.ts). These tests pin that the fast path is taken with the
 * nats.js we ship, that it degrades to one publish per frame when the internals are not there,
 * and that reused slabs never corrupt frames still waiting in the socket.
 */
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

/** `nc` as a client whose internals are not what the holder expects (only the public API is left). */
function withoutInternals(conn: NatsConnection): NatsConnection {
  return new Proxy(conn, {
    get(target, key) {
      if (key === "protocol") return undefined
      const v = Reflect.get(target, key, target) as unknown
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

describe("holder's direct PUB-record writes", () => {
  it("writes whole frames straight to the socket with the nats.js we ship, and counts them as publishes", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(5 * MIB + 3, 1, hb)
    const sender = startSender(holderNc, { prefix, node: "h1", source: new MemorySource().add(hash, bytes) })
    senders.push(sender)
    await holderNc.flush()
    const outMsgs0 = holderNc.stats().outMsgs
    const report = await fetchChunkReport(nc, { prefix, hash, holders: ["h1"], hashBackend: hb })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    await until(() => sender.stats().activeTransfers === 0, "sender idle")
    const frames = Math.ceil(bytes.length / DATA_MAX_PAYLOAD)
    expect(sender.stats().framesWrittenDirect).toBe(frames)
    // HEAD and FIN go through publish; the frames are counted by the connection as well
    expect(holderNc.stats().outMsgs - outMsgs0).toBeGreaterThanOrEqual(frames + 2)
  })

  it("serves every byte one publish per frame when the connection's internals are not as expected", async () => {
    const prefix = uniquePrefix()
    const { bytes, hash } = chunkOf(2 * MIB + 11, 2, hb)
    const sender = startSender(withoutInternals(holderNc), { prefix, node: "h1", source: new MemorySource().add(hash, bytes) })
    senders.push(sender)
    await holderNc.flush()
    const report = await fetchChunkReport(nc, { prefix, hash, holders: ["h1"], hashBackend: hb })
    expect(sameBytes(report.bytes, bytes)).toBe(true)
    await until(() => sender.stats().activeTransfers === 0, "sender idle")
    expect(sender.stats()).toMatchObject({ framesSent: Math.ceil(bytes.length / DATA_MAX_PAYLOAD), framesWrittenDirect: 0 })
  })

  it("never reuses a slab the socket still holds: many transfers over a congested link all verify", async () => {
    // the holder's link is slow, so its socket queue holds written slab slices for a while
    const link = await startSlowLink(natsUrl(), 2)
    const slowNc = await connect({ servers: link.url })
    try {
      const prefix = uniquePrefix()
      const source = new MemorySource()
      const chunks = Array.from({ length: 6 }, (_, i) => chunkOf(4 * MIB + i * 4099, 100 + i, hb))
      for (const c of chunks) source.add(c.hash, c.bytes)
      const sender = startSender(slowNc, { prefix, node: "h1", source })
      await slowNc.flush()
      // several rounds, so later transfers run on slabs freed by earlier ones
      for (let round = 0; round < 2; round++) {
        const reports = await Promise.all(chunks.map((c) => fetchChunkReport(nc, { prefix, hash: c.hash, holders: ["h1"], hashBackend: hb })))
        for (const [i, r] of reports.entries()) expect(sameBytes(r.bytes, chunks[i]!.bytes), `chunk ${i} round ${round}`).toBe(true)
      }
      expect(receiverFor(nc, prefix).stats().integrityFailures).toBe(0)
      expect(sender.stats().framesWrittenDirect).toBeGreaterThan(0)
      // its server took the bytes slowly, so the holder paused for it instead of queueing ever more
      expect(sender.stats().serverWaits).toBeGreaterThan(0)
      await sender.close()
    } finally {
      await slowNc.close()
      await link.close()
    }
  })
})
