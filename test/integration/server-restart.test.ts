import { afterEach, describe, expect, it } from "vitest"
import { type BlobRef, fetchBlob, metricsRegistry, type ReadSources } from "../../plugin/index.ts"
import { loadHashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { connect } from "@nats-io/transport-node"
import { Materializer } from "../../folds/index.ts"
import { natsFoldBus } from "../../plugin/nats-bus.ts"
import { seededBytes, seededStream } from "../support/bytes.ts"
import { RECONNECT } from "../support/fault-node.ts"
import { sameBytes } from "../support/expect.ts"
import { type FaultNode, portOf, reconnectedAfter, seededDigestOnce, startFaultNode } from "../support/fault-node.ts"
import { type NatsServerHandle, startNatsServer } from "../support/nats-server.ts"
import { freshPrefix } from "../support/nodes.ts"
import { until } from "../support/poll.ts"

/** The value of one sample line (`name{labels} value`) of a Prometheus exposition. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1))
}

const SIZE = 256 << 20
const SEED = 41
/** Upper bound from the restart to the read's end (measured: a few seconds). */
const BOUND_MS = 60_000
/** How long the server stays down, and the nodes' idle timeout (below it). */
const DOWN_MS = 2500
const IDLE_MS = 2000

/**
 * Both nodes on one nats-server, which is stopped and started again on the same port while
 * b reads a 256 MiB blob from a. Both connections drop and come back; what was in flight is
 * lost. The read must end verified (or typed) within the bound, and the mesh must work after.
 */
describe("nats-server restarted on the same port mid-read", () => {
  let server: NatsServerHandle | undefined
  const nodes: FaultNode[] = []
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop()
    await server?.stop()
    server = undefined
  })

  async function setup(): Promise<{ a: FaultNode; b: FaultNode; ref: BlobRef; digest: string }> {
    server = await startNatsServer()
    const prefix = freshPrefix()
    const a = await startFaultNode([server.url], "a", { prefix, idleTimeoutMs: IDLE_MS })
    const b = await startFaultNode([server.url], "b", { prefix, idleTimeoutMs: IDLE_MS })
    nodes.push(a, b)
    const [ref, digest] = await Promise.all([a.blobs.put(seededStream(SIZE, SEED)), seededDigestOnce(SIZE, SEED)])
    await until(() => b.blobs.mesh!.folds.nearestHolders(ref.hex).includes("a"), "b sees a as a holder")
    return { a, b, ref, digest }
  }

  /** Stops the server and starts it again on the same port (at most once). */
  function restarter(downMs = DOWN_MS): { at: number | undefined; start(): void; done(): Promise<void> } {
    let done: Promise<void> | undefined
    const r = {
      at: undefined as number | undefined,
      start() {
        if (done !== undefined) return
        const old = server!
        r.at = Date.now()
        done = (async () => {
          await old.stop()
          // down for longer than the nodes' idle timeout: nobody may be blamed for the outage
          await new Promise((resolve) => setTimeout(resolve, downMs))
          server = await startNatsServer({ port: portOf(old.url) })
        })()
      },
      done: () => done ?? Promise.reject(new Error("never restarted")),
    }
    return r
  }

  /** After the fault: each sees the other live, a is a holder again, and a new read from a verifies. */
  async function meshWorksAgain(a: FaultNode, b: FaultNode, ref: BlobRef): Promise<void> {
    await until(() => b.blobs.mesh!.folds.isAlive("a") && a.blobs.mesh!.folds.isAlive("b"), "both live again", 15_000)
    await until(() => b.blobs.mesh!.folds.nearestHolders(ref.hex).includes("a"), "b sees a as a holder again", 15_000)
    // b advertised the blob once it was committed: a learns it (by event or by sync)
    await until(() => a.blobs.mesh!.folds.nearestHolders(ref.hex).includes("b"), "a sees b as a holder", 15_000)
    const fresh = seededBytes(12 << 20, 43)
    const ref2 = await a.blobs.put(fresh)
    expect(sameBytes(await b.blobs.get(ref2), fresh)).toBe(true)
    expect(a.statuses).toContain("reconnect")
    expect(b.statuses).toContain("reconnect")
    expect(b.blobs.mesh!.reconnects).toBeGreaterThanOrEqual(1)
  }

  it("a streamed 256 MiB read resumes after the restart and ends verified; the folds resync and a new read works", async () => {
    const { a, b, ref, digest } = await setup()
    const h = (await loadHashBackend("native")).create()
    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    const r = restarter()
    let got = 0
    for await (const part of b.blobs.read(ref, { sources })) {
      h.update(part)
      got += part.length
      if (got >= 32 << 20) r.start()
    }
    const elapsed = Date.now() - r.at!
    await r.done()
    const stats = b.blobs.mesh!.receiver.stats()
    console.log(`server restart, streamed read: verified ${elapsed} ms after the restart began (b back after ${reconnectedAfter(b, r.at!)} ms, a after ${reconnectedAfter(a, r.at!)} ms); faultResumes ${JSON.stringify(stats.faultResumes)} refetches ${b.blobs.mesh!.refetches}`)
    expect(elapsed).toBeLessThan(BOUND_MS)
    expect(got).toBe(SIZE)
    expect(toHex(h.digest())).toBe(digest)
    // resumed, not started over: the bytes received are the blob and its manifest, plus at most the chunks re-fetched whole
    expect(stats.faultResumes.reconnect + stats.faultResumes.stall + b.blobs.mesh!.refetches).toBeGreaterThan(0)
    expect(stats.bytesReceived).toBeLessThan(SIZE + (6 * 16 << 20))
    // the outage was the server's: no holder was blamed for it
    expect(b.blobs.mesh!.holderFailures).toEqual({})
    expect(await b.blobs.store.hasBlob(ref)).toBe(true)
    // operators see the outage and the resumes
    const text = await metricsRegistry(b.blobs).metrics()
    expect(sample(text, "dataforts_reconnects_total")).toBeGreaterThanOrEqual(1)
    expect(sample(text, 'dataforts_transfer_resumes_total{reason="reconnect"}')).toBe(stats.faultResumes.reconnect)
    await meshWorksAgain(a, b, ref)
  }, 90_000)

  it("fetchBlob of 256 MiB resumes after the restart and commits verified bytes; the folds resync and a new read works", async () => {
    const { a, b, ref, digest } = await setup()
    const r = restarter()
    let got = 0
    await fetchBlob(b.blobs, ref, {
      onProgress: (p) => {
        got = p.bytes
        if (got >= 32 << 20) r.start()
      },
    })
    const elapsed = Date.now() - r.at!
    await r.done()
    const stats = b.blobs.mesh!.receiver.stats()
    console.log(`server restart, fetchBlob: committed ${elapsed} ms after the restart began (b back after ${reconnectedAfter(b, r.at!)} ms, a after ${reconnectedAfter(a, r.at!)} ms); faultResumes ${JSON.stringify(stats.faultResumes)} refetches ${b.blobs.mesh!.refetches}`)
    expect(elapsed).toBeLessThan(BOUND_MS)
    expect(await b.blobs.store.hasBlob(ref)).toBe(true)
    // what was committed is what was put: read back from b's own disk and hashed
    const h = (await loadHashBackend("native")).create()
    const local: ReadSources = { cache: 0, disk: 0, peers: {} }
    for await (const part of b.blobs.read(ref, { sources: local })) h.update(part)
    expect(local.peers).toEqual({})
    expect(toHex(h.digest())).toBe(digest)
    expect(stats.bytesReceived).toBeLessThan(SIZE + (6 * 16 << 20))
    // the outage was the server's: no holder was blamed for it
    expect(b.blobs.mesh!.holderFailures).toEqual({})
    await meshWorksAgain(a, b, ref)
  }, 90_000)

  it("a fact published while the server was down reaches peers right after the reconnect, also one that reconnects later, not a heartbeat later", async () => {
    server = await startNatsServer()
    const prefix = freshPrefix()
    // m2's connection comes back later than m1's (it retries every 1.5 s): the heartbeat m1
    // sends the moment it is back finds nobody, a follow-up must reach m2
    const [nc1, nc2] = await Promise.all([
      connect({ servers: server.url, ...RECONNECT }),
      connect({ servers: server.url, ...RECONNECT, reconnectTimeWait: 1500, reconnectJitter: 0 }),
    ])
    // heartbeats every 20 s: only the one sent on reconnect can carry the news within the test
    const m2 = new Materializer({ bus: natsFoldBus(nc2), node: "m2", prefix, heartbeatMs: 20_000 }).start()
    await nc2.flush() // m2 listens before m1's first heartbeat goes out
    const bus1 = natsFoldBus(nc1)
    const m1 = new Materializer({ bus: bus1, node: "m1", prefix, heartbeatMs: 20_000 }).start()
    try {
      await until(() => m2.liveNodes().includes("m1"), "m2 sees m1")
      const hex = "ab".repeat(32)
      const r = restarter()
      r.start()
      await until(() => nc1.isClosed() || (nc1 as unknown as { protocol: { connected: boolean } }).protocol.connected === false, "m1 disconnected")
      // published while down: nats.js drops it when it reconnects
      m1.have([hex])
      m1.flush()
      await r.done()
      await until(() => m2.holdersOf(hex).includes("m1"), "m2 learns the advert from m1's reconnect heartbeat", 8_000)
      expect(m2.stats.syncs).toBeGreaterThan(0)
      // closed, the materializer stops watching the connection (its status watcher ends)
      await m1.close()
      bus1.dispose()
      await until(() => (nc1 as unknown as { protocol: { listeners: unknown[] } }).protocol.listeners.length === 0, "no status watcher left on m1's connection")
    } finally {
      await m1.close()
      await m2.close()
      await nc1.close()
      await nc2.close()
    }
  }, 60_000)

  it("a read started while the server is down waits for it and ends verified once it is back", async () => {
    server = await startNatsServer()
    const prefix = freshPrefix()
    const a = await startFaultNode([server.url], "a", { prefix, idleTimeoutMs: IDLE_MS })
    const b = await startFaultNode([server.url], "b", { prefix, idleTimeoutMs: IDLE_MS })
    nodes.push(a, b)
    const bytes = seededBytes(8 << 20, 47)
    const ref = await a.blobs.put(bytes)
    await until(() => b.blobs.mesh!.folds.nearestHolders(ref.hex).includes("a"), "b sees a as a holder")
    const r = restarter(4000)
    r.start()
    await until(() => b.statuses.includes("disconnect"), "b disconnected")
    // the read starts once a looks dead to b, and the server stays down for longer than the
    // discovery timeout (2 s) after that: without waiting out the outage it would fail NO_HOLDER
    await until(() => !b.blobs.mesh!.folds.isAlive("a"), "a looks dead to b")
    const got = b.blobs.get(ref)
    await r.done()
    expect(sameBytes(await got, bytes)).toBe(true)
    console.log(`server restart, read started while down: verified ${Date.now() - r.at!} ms after the restart began`)
    expect(Date.now() - r.at!).toBeLessThan(BOUND_MS)
  }, 60_000)
})
