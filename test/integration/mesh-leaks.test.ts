import type { NatsConnection } from "@nats-io/nats-core"
import { afterEach, describe, expect, inject, it } from "vitest"
import type { BlobRef } from "../../plugin/index.ts"
import { seededBytes } from "../support/bytes.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"
import { until } from "../support/poll.ts"

/** Subscriptions the client holds (nats.js keeps them in its protocol handler). */
const subscriptions = (nc: NatsConnection) => (nc as unknown as { protocol: { subscriptions: { size(): number } } }).protocol.subscriptions.size()
const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length

describe("resources after many transfers", () => {
  const nodes: TestNode[] = []
  const url = inject("natsUrl")
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop()
  })

  it("after 200 concurrent transfers, subscriptions, timers and transfers are back to baseline at both ends", async () => {
    const prefix = freshPrefix()
    const [a, b] = await Promise.all(["a", "b"].map((n) => startNode(url, n, { prefix })))
    nodes.push(a!, b!)
    const payloads = Array.from({ length: 200 }, (_, i) => seededBytes(20_000 + i * 97, 1000 + i))
    const refs: BlobRef[] = []
    for (const p of payloads) refs.push(await a!.blobs.put(p))
    await until(() => refs.every((r) => b!.blobs.mesh!.folds.holdersOf(r.hex).length === 1), "b knows every holder")
    // nats.js opens one shared reply-inbox subscription on a connection's first request
    // (the folds' pings make one sooner or later): open it now so it is in the baseline
    for (const n of [a!, b!]) await n.nc.request(`${prefix}.nobody`, new Uint8Array(0), { timeout: 1000 }).catch(() => {})
    const base = { subsA: subscriptions(a!.nc), subsB: subscriptions(b!.nc), timers: timers() }

    const got = await Promise.all(refs.map((r) => b!.blobs.get(r)))
    got.forEach((bytes, i) => expect(Buffer.from(bytes).equals(payloads[i]!)).toBe(true))

    await until(() => a!.blobs.mesh!.sender.stats().activeTransfers === 0, "sender drained")
    expect(b!.blobs.mesh!.receiver.stats().activeFetches).toBe(0)
    expect(a!.blobs.mesh!.sender.stats().transfersCompleted).toBeGreaterThanOrEqual(200)
    await until(() => subscriptions(a!.nc) === base.subsA && subscriptions(b!.nc) === base.subsB, "subscriptions back to baseline")
    // timers: the folds' own periodic ones are in the baseline; nothing per transfer survives
    await until(() => timers() <= base.timers, `timers back to baseline (${base.timers})`)
  })

  it("close() of an attached node leaves the caller's connection open with no subscriptions of ours", async () => {
    const prefix = freshPrefix()
    const a = await startNode(url, "a", { prefix })
    nodes.push(a)
    await a.blobs.put(seededBytes(1000, 1))
    await a.blobs.close()
    expect(a.nc.isClosed()).toBe(false)
    expect(subscriptions(a.nc)).toBe(0)
  })
})
