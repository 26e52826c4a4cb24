import { randomBytes, randomUUID } from "node:crypto"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { afterEach, describe, expect, inject, it } from "vitest"
import { Materializer } from "../../folds/index.ts"
import { metricsRegistry } from "../../plugin/index.ts"
import { seededBytes } from "../support/bytes.ts"
import { sameBytes } from "../support/expect.ts"
import { natsFoldBus } from "../support/fold-bus.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"
import { until } from "../support/poll.ts"

/**
 * Floods on an open server: a raw client makes up origins by the hundred thousand, or
 * advertises millions of hashes under one name. The state must stay bounded (measured on
 * the heap) and the node must keep serving.
 */

const enc = new TextEncoder()
const json = (v: unknown) => enc.encode(JSON.stringify(v))
const hex = () => randomBytes(32).toString("hex")

/** A forced GC: `--expose-gc` when the runner passed it, else enabled at runtime. */
function gcFn(): () => void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g) return g
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
}
const heapAfterGc = () => {
  const gc = gcFn()
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
const MiB = 1 << 20
/** The mesh's defaults for the options startNode shortens. */
const DEFAULTS = { heartbeatMs: 1000, idleTimeoutMs: 5000, discoveryTimeoutMs: 3000 }

describe("fold floods", () => {
  const nodes: TestNode[] = []
  const cleanup: Array<() => Promise<unknown>> = []
  const url = inject("natsUrl")
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
    for (const n of nodes.splice(0)) await n.stop()
  })

  async function attacker(): Promise<NatsConnection> {
    const nc = await connect({ servers: url })
    cleanup.push(() => nc.close())
    return nc
  }

  it("100k made-up origins (a heartbeat or an advert each) while a read goes on: the read finishes, the folds keep at most 1024 origins, syncs stay few", async () => {
    const prefix = freshPrefix()
    // default options (startNode shortens them for speed); both nodes share this process, so
    // each flood is taken in twice here, and transfer frames queue behind it on each connection
    const [honest, reader] = await Promise.all([startNode(url, "honest", { prefix, ...DEFAULTS }), startNode(url, "reader", { prefix, ...DEFAULTS })])
    nodes.push(honest!, reader!)
    const bytes = seededBytes(24 << 20, 61)
    const ref = await honest!.blobs.put(bytes)
    const folds = reader!.blobs.mesh!.folds
    await until(() => folds.nearestHolders(ref.hex).includes("honest"), "the reader knows the honest holder")
    const heap0 = heapAfterGc()
    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()

    const evil = await attacker()
    const ORIGINS = 100_000
    const epoch = Date.now() * 1000
    const t0 = Date.now()
    const flood = (async () => {
      for (let i = 0; i < ORIGINS; i++) {
        const origin = `fake${i}`
        if (i % 2 === 0) {
          // alive for an hour, claiming a holders watermark nobody serves: everyone would sync it
          evil.publish(`${prefix}.fold.nodes.${origin}`, json({ origin, epoch, seq: 1, data: { intervalMs: 3_600_000, watermarks: { holders: 2 } } }))
        } else {
          evil.publish(`${prefix}.fold.holders.${origin}`, json({ origin, epoch, seq: 1, data: { add: [hex(), ref.hex], remove: [] } }))
        }
        // paced by the server's PONGs: as fast as the server takes it, not one burst
        if (i % 2000 === 1999) await evil.flush()
      }
      // after everything else from this connection: the reader has seen the flood once it sees this
      evil.publish(`${prefix}.fold.heat.sentinel`, enc.encode("end of flood"))
      await evil.flush()
    })()
    // the read runs through the flood
    const got = await reader!.blobs.get(ref).catch((err: unknown) => err as Error)
    const readMs = Date.now() - t0
    await flood
    const floodMs = Date.now() - t0
    // the sentinel is refused either way: malformed, or unheard-of while the queue was full
    await until(() => (folds.stats.rejected.heat?.malformed ?? 0) + (folds.stats.rejected.heat?.overload ?? 0) === 1, "the reader has taken in the flood", 30_000)
    const takenMs = Date.now() - t0
    lag.disable()
    const heap1 = heapAfterGc()
    const syncTries = folds.stats.syncs + folds.stats.syncFailures
    console.log(
      `flood: ${ORIGINS} origins published in ${floodMs} ms, taken in by ${takenMs} ms; 24 MiB read done after ${readMs} ms; event loop lag max ${(lag.max / 1e6).toFixed(0)} ms p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms; ` +
        `origins kept nodes=${folds.nodes.origins} holders=${folds.holders.origins}; holder ids ${folds.holders.state.internedNodes}; syncs tried ${syncTries}, deferred ${folds.stats.syncsDeferred}; ` +
        `heap +${((heap1 - heap0) / MiB).toFixed(1)} MiB; rejected ${JSON.stringify(folds.stats.rejected)}`,
    )
    if (!(got instanceof Uint8Array)) console.log(`read failed: ${got}; honest alive ${folds.isAlive("honest")}, holders ${folds.holdersOf(ref.hex).filter((h) => !h.startsWith("fake"))}, failures ${JSON.stringify(reader!.blobs.mesh!.holderFailures)}`)
    expect(got instanceof Uint8Array ? sameBytes(got, bytes) : got).toBe(true)
    expect(folds.nodes.origins).toBeLessThanOrEqual(1024)
    expect(folds.holders.origins).toBeLessThanOrEqual(1024)
    expect(folds.holders.state.internedNodes).toBeLessThanOrEqual(1024)
    expect(folds.holders.state.pairs).toBeLessThanOrEqual(2 * 1024 + 10)
    expect(folds.stats.rejected.nodes?.["origin-cap"] ?? 0).toBeGreaterThan(0)
    // syncs are tried per admitted origin and backed off, not per event
    expect(syncTries).toBeLessThan(4 * 1024)
    expect(heap1 - heap0).toBeLessThan(48 * MiB)
    // operators see it: refusals by fold and reason, origins kept
    const text = await metricsRegistry(reader!.blobs).metrics()
    expect(text).toMatch(/dataforts_fold_events_rejected_total\{fold="nodes",reason="origin-cap"\} [1-9]/)
    expect(text).toMatch(/dataforts_fold_origins\{fold="nodes"\} (\d+)/)
    expect(Number(/dataforts_fold_origins\{fold="holders"\} (\d+)/.exec(text)?.[1])).toBeLessThanOrEqual(1024)
    // the honest node is still known, alive and a holder
    expect(folds.isAlive("honest")).toBe(true)
    expect(folds.holdersOf(ref.hex)).toContain("honest")
  }, 60_000)

  it("one origin advertising 200k hashes over the bus keeps at most its cap (20k), measured on the heap", async () => {
    const prefix = `t-${randomUUID()}`
    const nc = await connect({ servers: url })
    const m = new Materializer({ bus: natsFoldBus(nc), node: "b", prefix, heartbeatMs: 200, maxHoldingsPerNode: 20_000 })
    cleanup.push(async () => {
      await m.close()
      await nc.close()
    })
    m.start()
    const heap0 = heapAfterGc()
    const evil = await attacker()
    const epoch = Date.now() * 1000
    evil.publish(`${prefix}.fold.nodes.big`, json({ origin: "big", epoch, seq: 1, data: { intervalMs: 3_600_000, watermarks: {} } }))
    const EVENTS = 40
    const PER_EVENT = 5_000
    const pool = Array.from({ length: PER_EVENT }, hex)
    for (let seq = 1; seq <= EVENTS; seq++) {
      // a fresh set each time: only the last hex digit pair differs from the pool, so hashes are distinct
      const suffix = (seq % 256).toString(16).padStart(2, "0")
      const add = pool.map((h) => `${h.slice(0, 60)}${((seq >> 8) & 0xff).toString(16).padStart(2, "0")}${suffix}`)
      evil.publish(`${prefix}.fold.holders.big`, json({ origin: "big", epoch, seq, data: { add, remove: [] } }))
      if (seq % 10 === 0) await evil.flush()
    }
    await evil.flush()
    await until(() => m.holders.watermarkOf("big")?.seq === EVENTS, "all events folded", 30_000)
    const heap1 = heapAfterGc()
    const held = m.holders.state.countOf("big")
    console.log(`one origin: ${EVENTS * PER_EVENT} hashes advertised, ${held} kept, ${m.holders.state.capped} capped; heap +${((heap1 - heap0) / MiB).toFixed(1)} MiB`)
    expect(held).toBe(20_000)
    expect(m.holders.state.capped).toBe(EVENTS * PER_EVENT - 20_000)
    // ~85 B per pair: 20k pairs ~1.7 MiB, the 200k advertised would be ~17 MiB
    expect(heap1 - heap0).toBeLessThan(8 * MiB)
  }, 60_000)
})
