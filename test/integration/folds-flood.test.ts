import { randomBytes, randomUUID } from "node:crypto"
import { join } from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { afterEach, describe, expect, inject, it } from "vitest"
import { Materializer } from "../../folds/index.ts"
import { BlobRef, metricsRegistry } from "../../plugin/index.ts"
import { seededStream } from "../support/bytes.ts"
import { sameBytes } from "../support/expect.ts"
import { spawnTs } from "../support/child.ts"
import { natsFoldBus } from "../support/fold-bus.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"
import { until } from "../support/poll.ts"
import { tempDir } from "../support/temp.ts"

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

  it("100k made-up origins (a heartbeat or an advert each) while a read goes on: the read finishes, the folds keep at most their cap of origins, syncs stay few", async () => {
    const prefix = freshPrefix()
    const tmp = await tempDir("df-flood-")
    cleanup.push(() => tmp.remove())
    // the holder and the attacker in their own processes, as on a real bus: the reader's event
    // loop is the one under test (default options: startNode shortens them for speed)
    const holder = spawnTs("child-node.ts", ["put", url, prefix, "honest", join(tmp.path, "h"), String(24 << 20), "61"])
    cleanup.push(async () => holder.proc.kill("SIGKILL"))
    const ref = BlobRef.parse(await holder.line((l) => l.startsWith("df1-")))
    // a cap below the default (1024), to see that Blobs.open's foldLimits reach the folds
    const MAX_ORIGINS = 512
    const reader = await startNode(url, "reader", { prefix, ...DEFAULTS, foldLimits: { maxOrigins: MAX_ORIGINS } })
    nodes.push(reader)
    const folds = reader.blobs.mesh!.folds
    await until(() => folds.nearestHolders(ref.hex).includes("honest"), "the reader knows the honest holder")
    const heap0 = heapAfterGc()
    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()

    const ORIGINS = 100_000
    const t0 = Date.now()
    const evil = spawnTs("child-flood.ts", [url, prefix, String(ORIGINS), ref.hex])
    cleanup.push(async () => evil.proc.kill("SIGKILL"))
    const flood = evil.line((l) => l.startsWith("done "), 60_000)
    // the read starts once the flood reaches the reader, and runs through it
    const heardOf = () => folds.stats.applied + Object.values(folds.stats.rejected).reduce((n, r) => n + Object.values(r).reduce((x, y) => x + y, 0), 0)
    await until(() => heardOf() > 5000, "the flood reaches the reader", 30_000)
    const readFrom = Date.now()
    const got = await reader.blobs.get(ref).catch((err: unknown) => err as Error)
    const readMs = Date.now() - readFrom
    const floodLeft = ORIGINS - heardOf()
    const floodMs = Number((await flood).slice(5))
    // the sentinel is refused either way: malformed, or unheard-of while the queue was full
    await until(() => (folds.stats.rejected.heat?.malformed ?? 0) + (folds.stats.rejected.heat?.overload ?? 0) === 1, "the reader has taken in the flood", 30_000)
    const takenMs = Date.now() - t0
    lag.disable()
    const heap1 = heapAfterGc()
    const syncTries = folds.stats.syncs + folds.stats.syncFailures
    console.log(
      `flood: ${ORIGINS} origins published in ${floodMs} ms, taken in by ${takenMs} ms; 24 MiB read in ${readMs} ms with ${floodLeft} flood events still to come; event loop lag max ${(lag.max / 1e6).toFixed(0)} ms p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms; ` +
        `origins kept nodes=${folds.nodes.origins} holders=${folds.holders.origins}; holder ids ${folds.holders.state.internedNodes}; syncs tried ${syncTries}, deferred ${folds.stats.syncsDeferred}; ` +
        `heap +${((heap1 - heap0) / MiB).toFixed(1)} MiB; rejected ${JSON.stringify(folds.stats.rejected)}`,
    )
    if (!(got instanceof Uint8Array)) console.log(`read failed: ${got}; honest alive ${folds.isAlive("honest")}, holders ${folds.holdersOf(ref.hex).filter((h) => !h.startsWith("fake"))}, failures ${JSON.stringify(reader.blobs.mesh!.holderFailures)}`)
    const expected: Uint8Array[] = []
    for await (const part of seededStream(24 << 20, 61)) expected.push(part.slice())
    expect(got instanceof Uint8Array ? sameBytes(got, Buffer.concat(expected)) : got).toBe(true)
    expect(folds.nodes.origins).toBeLessThanOrEqual(MAX_ORIGINS)
    expect(folds.holders.origins).toBeLessThanOrEqual(MAX_ORIGINS)
    expect(folds.holders.state.internedNodes).toBeLessThanOrEqual(MAX_ORIGINS)
    expect(folds.holders.state.pairs).toBeLessThanOrEqual(2 * MAX_ORIGINS + 10)
    expect(folds.stats.rejected.nodes?.["origin-cap"] ?? 0).toBeGreaterThan(0)
    // syncs are tried per admitted origin and backed off, not per event
    expect(syncTries).toBeLessThan(4 * MAX_ORIGINS)
    expect(heap1 - heap0).toBeLessThan(48 * MiB)
    // operators see it: refusals by fold and reason, origins kept
    const text = await metricsRegistry(reader.blobs).metrics()
    expect(text).toMatch(/dataforts_fold_events_rejected_total\{fold="nodes",reason="origin-cap"\} [1-9]/)
    expect(text).toMatch(/dataforts_fold_origins\{fold="nodes"\} (\d+)/)
    expect(Number(/dataforts_fold_origins\{fold="holders"\} (\d+)/.exec(text)?.[1])).toBeLessThanOrEqual(MAX_ORIGINS)
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
