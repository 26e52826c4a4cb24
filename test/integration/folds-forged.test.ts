import { randomBytes, randomUUID } from "node:crypto"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { afterEach, describe, expect, inject, it } from "vitest"
import { Materializer, type MaterializerOptions } from "../../folds/index.ts"
import { natsFoldBus } from "../support/fold-bus.ts"
import { until } from "../support/poll.ts"

/**
 * Forged fold traffic on an open server: a raw nats.js client publishes hand-made envelopes
 * under an honest node's name. Hashes stop wrong bytes; these tests are about the state.
 */

const hashes = (n: number) => Array.from({ length: n }, () => randomBytes(32).toString("hex"))
const enc = new TextEncoder()
const json = (v: unknown) => enc.encode(JSON.stringify(v))

describe("forged fold events", () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  async function conn(): Promise<NatsConnection> {
    const nc = await connect({ servers: inject("natsUrl") })
    cleanup.push(() => nc.close())
    return nc
  }

  async function node(prefix: string, name: string, opts: Partial<MaterializerOptions> = {}): Promise<Materializer> {
    const nc = await conn()
    const m = new Materializer({ bus: natsFoldBus(nc), node: name, prefix, heartbeatMs: 100, ...opts })
    cleanup.push(() => m.close())
    return m.start()
  }

  /** The epoch `origin` publishes under, read off the bus as an attacker would. */
  async function epochOf(nc: NatsConnection, prefix: string, origin: string): Promise<number> {
    const sub = nc.subscribe(`${prefix}.fold.nodes.${origin}`, { max: 1 })
    for await (const m of sub) return (m.json() as { epoch: number }).epoch
    throw new Error("no heartbeat")
  }

  it("an envelope naming another origin than its subject is dropped and counted as origin-mismatch", async () => {
    const prefix = `t-${randomUUID()}`
    const a = await node(prefix, "a")
    const b = await node(prefix, "b")
    const [h, fake] = hashes(2) as [string, string]
    a.have([h])
    await until(() => b.holdersOf(h).includes("a"), "B sees A's holding")
    const evil = await conn()
    const epoch = await epochOf(evil, prefix, "a")
    // on mallory's subject, claiming to be a: take h away, add a fake
    evil.publish(`${prefix}.fold.holders.mallory`, json({ origin: "a", epoch, seq: 2, data: { add: [fake], remove: [h] } }))
    evil.publish(`${prefix}.fold.nodes.mallory`, json({ origin: "a", epoch, seq: 1e6, data: { intervalMs: 1, watermarks: {} } }))
    await until(() => b.stats.rejected.holders?.["origin-mismatch"] === 1 && b.stats.rejected.nodes?.["origin-mismatch"] === 1, "both counted")
    expect(b.holdersOf(h)).toEqual(["a"])
    expect(b.holdersOf(fake)).toEqual([])
    expect(b.holders.watermarkOf("mallory")).toBeUndefined()
    expect(b.isAlive("a")).toBe(true)
  })

  it("made-up epochs and seqs under an honest node's name: its real events still apply and it stays alive, with syncs rate-limited", async () => {
    const prefix = `t-${randomUUID()}`
    const a = await node(prefix, "a")
    const b = await node(prefix, "b")
    const [h1, h2, h3] = hashes(3) as [string, string, string]
    const fakes = hashes(5)
    a.have([h1])
    await until(() => b.holdersOf(h1).includes("a"), "B sees h1")
    const evil = await conn()
    const epoch = await epochOf(evil, prefix, "a")
    const seq = a.ownWatermarks().holders!
    const pagesBefore = a.stats.pagesServed
    const forged = [
      // an epoch a year ahead: refused outright
      { subject: "holders", env: { origin: "a", epoch: (Date.now() + 365 * 86_400_000) * 1000, seq: 1, data: { add: [fakes[0]], remove: [h1] } } },
      // a plausible newer epoch: would void A's holdings and make its real events stale
      { subject: "holders", env: { origin: "a", epoch: epoch + 1_000_000, seq: 1, data: { add: [fakes[1]], remove: [h1] } } },
      // the largest seq: would make every real event a replay, or leave a gap nothing fills
      { subject: "holders", env: { origin: "a", epoch, seq: Number.MAX_SAFE_INTEGER, data: { add: [fakes[2]], remove: [] } } },
      // a small gap: held back until the origin's snapshot says what is real
      { subject: "holders", env: { origin: "a", epoch, seq: seq + 3, data: { add: [fakes[3]], remove: [h1] } } },
      // heartbeats: a seq no real node reaches, and a newer epoch claiming a huge watermark
      { subject: "nodes", env: { origin: "a", epoch, seq: Number.MAX_SAFE_INTEGER, data: { intervalMs: 100, watermarks: { holders: Number.MAX_SAFE_INTEGER } } } },
      { subject: "nodes", env: { origin: "a", epoch: epoch + 1_000_000, seq: 1, data: { intervalMs: 1, watermarks: { holders: 1e15 } } } },
      { subject: "heat", env: { origin: "a", epoch: epoch + 1_000_000, seq: 1, data: { reads: [[fakes[4], 1e9]] } } },
    ]
    // 2 s of forgery, 20 rounds of every kind, while A keeps heartbeating every 100 ms
    let published = 0
    let deadAt: number | undefined
    const t0 = Date.now()
    for (let round = 0; round < 20; round++) {
      for (let copy = 0; copy < 5; copy++) {
        for (const f of forged) {
          evil.publish(`${prefix}.fold.${f.subject}.a`, json(f.env))
          published++
        }
      }
      await evil.flush()
      await new Promise((r) => setTimeout(r, 100))
      if (!b.isAlive("a")) deadAt ??= Date.now() - t0
    }
    // A's real facts after the forgery: three more holders events (past the forged gap's seq)
    a.have([h2])
    a.flush()
    a.drop([h2])
    a.flush()
    a.have([h3])
    a.flush()
    await until(() => b.holders.watermarkOf("a")?.seq === a.ownWatermarks().holders, "B at A's real holders seq", 5000)
    await until(() => b.holdersOf(h3).includes("a"), "B sees h3")
    expect(b.holdersOf(h1)).toEqual(["a"])
    expect(b.holdersOf(h2)).toEqual([])
    for (const f of fakes.slice(0, 4)) expect(b.holdersOf(f)).toEqual([])
    await until(() => b.heatOf(fakes[4]!) === 0, "the forged heat is gone", 3000)
    expect(b.holders.watermarkOf("a")?.epoch).toBe(epoch)
    expect(b.nodes.watermarkOf("a")?.epoch).toBe(epoch)
    expect(deadAt, "A never looked dead to B").toBeUndefined()
    expect(b.isAlive("a")).toBe(true)
    const rejected = b.stats.rejected
    expect(rejected.holders?.["future-epoch"]).toBe(100)
    expect(rejected.holders?.["new-epoch"]).toBeGreaterThanOrEqual(1)
    expect(rejected.holders?.["seq-jump"]).toBeGreaterThanOrEqual(1)
    expect(rejected.nodes?.["seq-jump"]).toBeGreaterThanOrEqual(1)
    // syncs A served (one page each): gated per (fold, origin) to one per heartbeat interval,
    // not one per forged event
    const served = a.stats.pagesServed - pagesBefore
    const elapsed = Date.now() - t0
    console.log(`forged: ${published} events in ${elapsed} ms; A served ${served} sync pages; B deferred ${b.stats.syncsDeferred} syncs`)
    expect(served).toBeLessThanOrEqual(3 * (Math.ceil(elapsed / 100) + 2))
    expect(served).toBeLessThan(published / 5)
    expect(b.stats.syncsDeferred).toBeGreaterThan(0)
  })

  it("a forged next event under an honest name is undone when the real one at that seq arrives", async () => {
    const prefix = `t-${randomUUID()}`
    const a = await node(prefix, "a")
    const b = await node(prefix, "b")
    const [h1, h2, fake] = hashes(3) as [string, string, string]
    a.have([h1])
    await until(() => b.holdersOf(h1).includes("a"), "B sees h1")
    const evil = await conn()
    const epoch = await epochOf(evil, prefix, "a")
    const next = a.ownWatermarks().holders! + 1
    // the attacker is first at A's next seq: B applies it (it follows on)
    evil.publish(`${prefix}.fold.holders.a`, json({ origin: "a", epoch, seq: next, data: { add: [fake], remove: [h1] } }))
    await until(() => b.holdersOf(fake).includes("a"), "B took the forged event")
    // A's real event at that seq is not a replay to ignore: B asks A
    a.have([h2])
    a.flush()
    await until(() => b.holdersOf(h2).includes("a") && b.holdersOf(fake).length === 0, "B has A's real facts again")
    expect(b.holdersOf(h1)).toEqual(["a"])
    expect(b.stats.rejected.holders?.conflict).toBe(1)
  })

  it("hundreds of made-up live nodes that answer no ping do not push a real peer out of the ping rotation", async () => {
    const prefix = `t-${randomUUID()}`
    const zz = await node(prefix, "zz", { heartbeatMs: 50 })
    const a = await node(prefix, "a", { heartbeatMs: 50 })
    await until(() => a.rttOf("zz") !== undefined, "A measured zz")
    const evil = await conn()
    const epoch = Date.now() * 1000
    for (let i = 0; i < 300; i++) {
      evil.publish(`${prefix}.fold.nodes.fake${i}`, json({ origin: `fake${i}`, epoch, seq: 1, data: { intervalMs: 3_600_000, watermarks: {} } }))
    }
    await evil.flush()
    await until(() => a.liveNodes().length >= 302, "A sees the made-up nodes alive")
    // count A's pings to zz over 20 ticks: every other tick goes to a peer that answered
    let pings = 0
    const sub = evil.subscribe(`${prefix}.ping.zz`, {
      callback: () => {
        pings++
      },
    })
    await new Promise((r) => setTimeout(r, 1000))
    sub.unsubscribe()
    expect(pings).toBeGreaterThanOrEqual(5)
    expect(zz.isAlive("a")).toBe(true)
  })
})
