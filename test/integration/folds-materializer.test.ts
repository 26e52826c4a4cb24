import { randomBytes, randomUUID } from "node:crypto"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { afterEach, describe, expect, inject, it } from "vitest"
import { Schema } from "effect"
import { defineFold, Materializer, type MaterializerOptions } from "../../folds/index.ts"
import { type CountingFoldBus, natsFoldBus } from "../support/fold-bus.ts"
import { until } from "../support/poll.ts"

const hashes = (n: number) => Array.from({ length: n }, () => randomBytes(32).toString("hex"))
const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length

interface Started {
  m: Materializer
  bus: CountingFoldBus
  nc: NatsConnection
}

describe("Materializer over a real nats-server", () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  async function node(prefix: string, node: string, opts: Partial<MaterializerOptions> = {}): Promise<Started> {
    const nc = await connect({ servers: inject("natsUrl") })
    const bus = natsFoldBus(nc)
    const m = new Materializer({ bus, node, prefix, heartbeatMs: 100, ...opts })
    cleanup.push(async () => {
      await m.close()
      await nc.close()
    })
    return { m, bus, nc }
  }

  it("a node that joins late learns every holder of A and B without re-publishing", async () => {
    const prefix = `t-${randomUUID()}`
    const a = await node(prefix, "a", { zone: "z1" })
    const b = await node(prefix, "b", { zone: "z2" })
    a.m.start()
    b.m.start()
    const ha = hashes(3000) // more than one batch
    const hb = hashes(500)
    const shared = hashes(1)[0]!
    a.m.have([...ha, shared])
    b.m.have([...hb, shared])
    b.m.have(hashes(1), "chunk")
    await until(() => b.m.holdersOf(ha[2999]!).includes("a") && a.m.holdersOf(hb[0]!).includes("b"), "A and B see each other")

    const c = await node(prefix, "c", { zone: "z1" })
    c.m.start()
    await until(
      () => ha.every((h) => c.m.holdersOf(h).join() === "a") && hb.every((h) => c.m.holdersOf(h).join() === "b"),
      "C learns A's and B's holdings",
      5000,
    )
    expect(c.m.holdersOf(shared).sort()).toEqual(["a", "b"])
    expect(c.m.holders.state.pairs).toBe(ha.length + hb.length + 2 + 1)
    expect(c.m.stats.syncs).toBeGreaterThanOrEqual(2)
    // same zone first
    await until(() => c.m.isAlive("a") && c.m.isAlive("b"), "C sees A and B alive")
    expect(c.m.nearestHolders(shared)).toEqual(["a", "b"])
  })

  it("a snapshot larger than one page arrives paged and complete", async () => {
    const prefix = `t-${randomUUID()}`
    const a = await node(prefix, "a", { batchMax: 20_000 })
    const many = hashes(40_000) // 40k × 33 B ≈ 1.3 MB packed: at least 3 pages
    a.m.have(many)
    a.m.flush()
    a.m.start()
    const c = await node(prefix, "c")
    c.m.start()
    await until(() => c.m.holders.state.pairs === many.length, "C restores A's 40k holdings", 10_000)
    expect(many.every((h) => c.m.holdersOf(h)[0] === "a")).toBe(true)
    expect(a.m.stats.pagesServed).toBeGreaterThanOrEqual(3)
  })

  it("a dropped event is noticed as a gap and healed by a snapshot", async () => {
    const prefix = `t-${randomUUID()}`
    const a = await node(prefix, "a")
    const b = await node(prefix, "b")
    a.m.start()
    b.m.start()
    const [h1, h2, h3] = hashes(3) as [string, string, string]
    a.m.have([h1])
    await until(() => b.m.holdersOf(h1).includes("a"), "B sees h1")
    // seq 2 is folded on A but never reaches the bus: simulate a lost message
    const publish = a.bus.publish
    a.bus.publish = () => {}
    a.m.have([h2])
    a.m.flush()
    a.bus.publish = publish
    a.m.have([h3])
    a.m.flush()
    await until(() => b.m.holdersOf(h2).includes("a") && b.m.holdersOf(h3).includes("a"), "B converges on h2 and h3")
    expect(b.m.stats.gaps).toBeGreaterThanOrEqual(1)
    expect(b.m.stats.syncs).toBeGreaterThanOrEqual(1)
    expect(b.m.holders.watermarkOf("a")?.seq).toBe(3)
  })

  it("a node that stops heartbeating is not alive after the timeout", async () => {
    const prefix = `t-${randomUUID()}`
    const a = await node(prefix, "a")
    const b = await node(prefix, "b")
    a.m.start()
    b.m.start()
    await until(() => b.m.isAlive("a") && a.m.isAlive("b"), "A and B see each other")
    await until(() => a.m.rttOf("b") !== undefined, "A measured an RTT to B")
    await a.m.close()
    const t0 = Date.now()
    await until(() => !b.m.isAlive("a"), "B declares A dead", 3000)
    expect(Date.now() - t0).toBeLessThan(2000) // 3 × 100 ms plus generous slack
    expect(b.m.liveNodes()).toEqual(["b"])
  })

  it("read heat and an application fold reach a late joiner", async () => {
    const Artifact = Schema.Struct({ name: Schema.String, ref: Schema.String })
    const artifacts = defineFold({
      name: "artifacts",
      data: Artifact,
      entry: Artifact,
      initial: () => new Map<string, string>(),
      apply: (s, e) => s.set(e.name, e.ref),
      snapshotOrigin: (s) => [...s].map(([name, ref]) => ({ name, ref })),
      restoreOrigin: (s, _origin, entries) => {
        for (const e of entries) s.set(e.name, e.ref)
        return s
      },
    })
    const prefix = `t-${randomUUID()}`
    const a = await node(prefix, "a", { folds: [artifacts] })
    a.m.start()
    const [hot, warm] = hashes(2) as [string, string]
    a.m.recordRead(hot, 5)
    a.m.recordRead(warm, 1)
    a.m.publish(artifacts, { name: "app", ref: "ref-1" })
    const c = await node(prefix, "c", { folds: [artifacts] })
    c.m.start()
    await until(() => c.m.fold(artifacts).state.get("app") === "ref-1" && c.m.heatOf(hot) > 4.9, "C learns artifacts and heat")
    expect(c.m.topN(2).map((t) => t.hash)).toEqual([hot, warm])
    // and live deltas keep flowing
    a.m.publish(artifacts, { name: "app", ref: "ref-2" })
    await until(() => c.m.fold(artifacts).state.get("app") === "ref-2", "C sees the next artifact")
  })

  it("malformed events are dropped and counted, not fatal", async () => {
    const prefix = `t-${randomUUID()}`
    const b = await node(prefix, "b")
    b.m.start()
    const enc = new TextEncoder()
    b.nc.publish(`${prefix}.fold.holders.x`, enc.encode("not json"))
    b.nc.publish(`${prefix}.fold.holders.x`, enc.encode(JSON.stringify({ origin: "x", epoch: 1, seq: 1, data: { add: ["zz"], remove: [] } })))
    b.nc.publish(`${prefix}.fold.holders.x`, enc.encode(JSON.stringify({ origin: "y", epoch: 1, seq: 1, data: { add: [], remove: [] } })))
    await until(() => b.m.stats.malformed === 3, "three malformed events counted")
    expect(b.m.holders.state.pairs).toBe(0)
  })

  it("close() leaves no subscriptions and no timers behind", async () => {
    const prefix = `t-${randomUUID()}`
    const a = await node(prefix, "a")
    const b = await node(prefix, "b")
    const before = timeouts()
    a.m.start()
    b.m.start()
    a.m.have(hashes(10))
    a.m.recordRead(hashes(1)[0]!)
    await until(() => b.m.holders.state.pairs === 10 && a.m.rttOf("b") !== undefined, "A and B in sync")
    expect(a.bus.activeSubscriptions()).toBeGreaterThan(0)
    await Promise.all([a.m.close(), a.m.close(), b.m.close()])
    expect(a.bus.activeSubscriptions()).toBe(0)
    expect(b.bus.activeSubscriptions()).toBe(0)
    await until(() => timeouts() <= before, "timers back to the baseline", 3000)
    expect(() => a.m.have(hashes(1))).toThrow(expect.objectContaining({ code: "CLOSED" }))
  })
})
