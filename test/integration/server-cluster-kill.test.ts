import { afterEach, describe, expect, it } from "vitest"
import type { ReadSources } from "../../plugin/index.ts"
import { loadHashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { seededBytes, seededStream } from "../support/bytes.ts"
import { sameBytes } from "../support/expect.ts"
import { type FaultNode, RECONNECT, reconnectedAfter, routed, seededDigestOnce, startFaultNode } from "../support/fault-node.ts"
import { type NatsServerHandle, startNatsServer } from "../support/nats-server.ts"
import { freshPrefix } from "../support/nodes.ts"
import { until } from "../support/poll.ts"

const SIZE = 64 << 20
const SEED = 51
/** Upper bound from the kill to the read's end (measured: a few seconds). */
const BOUND_MS = 60_000

/**
 * A 3-server cluster; a (the holder) on server 1, b (the reader) on server 2, each given all
 * three URLs in that order so it fails over. One server is SIGKILLed while b reads from a:
 * b's own (its connection fails over) or a's (the holder's connection fails over, b's stays).
 */
describe("a cluster member killed mid-transfer", () => {
  const servers: NatsServerHandle[] = []
  const nodes: FaultNode[] = []
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop()
    for (const s of servers.splice(0)) await s.stop()
  })

  async function cluster(): Promise<void> {
    const seed = await startNatsServer({ cluster: { name: "dfk" } })
    servers.push(seed)
    for (let i = 0; i < 2; i++) servers.push(await startNatsServer({ cluster: { name: "dfk", routes: [seed.clusterUrl!] } }))
    for (const [x, y] of [[0, 1], [1, 2], [2, 0]] as const) await until(() => routed(servers[x]!.url, servers[y]!.url), `route ${x}→${y}`, 15_000, 100)
  }

  async function readThroughKill(victim: 0 | 1): Promise<void> {
    await cluster()
    const prefix = freshPrefix()
    const urls = servers.map((s) => s.url)
    // in order, no shuffling: a starts on server 1, b on server 2, each fails over to the next
    const a = await startFaultNode(urls, "a", { prefix }, { ...RECONNECT, noRandomize: true })
    // a small read-ahead: the transfer keeps pace with the reader, so the kill lands mid-way
    const b = await startFaultNode([urls[1]!, urls[2]!, urls[0]!], "b", { prefix, readAheadBytes: 16 << 20 }, { ...RECONNECT, noRandomize: true })
    nodes.push(a, b)
    const [ref, digest] = await Promise.all([a.blobs.put(seededStream(SIZE, SEED)), seededDigestOnce(SIZE, SEED)])
    await until(() => b.blobs.mesh!.folds.nearestHolders(ref.hex).includes("a"), "b sees a as a holder")

    const h = (await loadHashBackend("native")).create()
    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    let got = 0
    let killedAt: number | undefined
    let receivedAtKill = 0
    // killed once 8 MiB have arrived (not been consumed: the read fetches ahead)
    const watch = setInterval(() => {
      const received = b.blobs.mesh!.receiver.stats().bytesReceived
      if (killedAt !== undefined || received < 8 << 20) return
      killedAt = Date.now()
      receivedAtKill = received
      process.kill(servers[victim]!.pid, "SIGKILL")
    }, 1)
    try {
      for await (const part of b.blobs.read(ref, { sources })) {
        h.update(part)
        got += part.length
      }
    } finally {
      clearInterval(watch)
    }
    const elapsed = Date.now() - killedAt!
    const moved = victim === 1 ? b : a
    const stats = b.blobs.mesh!.receiver.stats()
    console.log(`cluster, server ${victim + 1} killed: read verified ${elapsed} ms after the kill at ${receivedAtKill >> 20} MiB received (${moved.name} failed over after ${reconnectedAfter(moved, killedAt!)} ms); faultResumes ${JSON.stringify(stats.faultResumes)} refetches ${b.blobs.mesh!.refetches} failures ${JSON.stringify(b.blobs.mesh!.holderFailures)}`)
    expect(receivedAtKill).toBeLessThan(SIZE / 2)
    expect(elapsed).toBeLessThan(BOUND_MS)
    expect(got).toBe(SIZE)
    expect(toHex(h.digest())).toBe(digest)
    expect(sources.peers.a).toBeGreaterThan(0)
    // the node on the killed server moved to server 3; the other stayed where it was
    await until(() => reconnectedAfter(moved, killedAt!) !== undefined, `${moved.name} reconnected`)
    expect((victim === 1 ? a : b).statuses).not.toContain("disconnect")

    // afterwards: live and holders again on both sides, and a new read works
    await until(() => b.blobs.mesh!.folds.isAlive("a") && a.blobs.mesh!.folds.isAlive("b"), "both live again", 15_000)
    await until(() => b.blobs.mesh!.folds.nearestHolders(ref.hex).includes("a"), "b sees a as a holder again", 15_000)
    await until(() => a.blobs.mesh!.folds.nearestHolders(ref.hex).includes("b"), "a sees b as a holder", 15_000)
    const fresh = seededBytes(12 << 20, 53)
    const ref2 = await a.blobs.put(fresh)
    expect(sameBytes(await b.blobs.get(ref2), fresh)).toBe(true)
  }

  it("the reader's server dies: the reader fails over, the read resumes and ends verified; the folds resync and a new read works", () => readThroughKill(1), 90_000)

  it("the holder's server dies: the holder fails over, the read resumes and ends verified; the folds resync and a new read works", () => readThroughKill(0), 90_000)
})
