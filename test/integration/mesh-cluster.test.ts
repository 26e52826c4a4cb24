import { connect } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ReadSources } from "../../plugin/index.ts"
import { seededBytes } from "../support/bytes.ts"
import { type NatsServerHandle, startNatsServer } from "../support/nats-server.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"
import { until } from "../support/poll.ts"
import { sameBytes } from "../support/expect.ts"

/** True once a message published on `from` reaches a subscriber on `to` (routes are up). */
async function routed(from: string, to: string): Promise<boolean> {
  const [a, b] = await Promise.all([connect({ servers: from }), connect({ servers: to })])
  try {
    const sub = b.subscribe("probe.route", { max: 1 })
    await b.flush()
    const got = (async () => {
      for await (const _ of sub) return true
      return false
    })()
    a.publish("probe.route")
    await a.flush()
    return await Promise.race([got, new Promise<boolean>((r) => setTimeout(() => r(false), 300))])
  } finally {
    await a.close()
    await b.close()
  }
}

describe("a 3-server NATS cluster (routes on loopback)", () => {
  const servers: NatsServerHandle[] = []
  const nodes: TestNode[] = []
  beforeAll(async () => {
    const seed = await startNatsServer({ cluster: { name: "dfc" } })
    servers.push(seed)
    for (let i = 0; i < 2; i++) servers.push(await startNatsServer({ cluster: { name: "dfc", routes: [seed.clusterUrl!] } }))
    for (const [x, y] of [[0, 1], [1, 2], [2, 0]] as const) await until(() => routed(servers[x]!.url, servers[y]!.url), `route ${x}→${y}`, 15_000, 100)
  })
  afterAll(async () => {
    for (const n of nodes) await n.stop()
    for (const s of servers) await s.stop()
  })

  it("nodes on different servers exchange blobs", async () => {
    const prefix = freshPrefix()
    const [a, b, c] = await Promise.all(servers.map((s, i) => startNode(s.url, `n${i}`, { prefix })))
    nodes.push(a!, b!, c!)
    const bytes = seededBytes(20 << 20, 77)
    const ref = await a!.blobs.put(bytes)
    const fromA: ReadSources = { cache: 0, disk: 0, peers: {} }
    expect(sameBytes(await c!.blobs.get(ref, { sources: fromA }), bytes)).toBe(true)
    expect(fromA.peers.n0).toBeGreaterThan(0)
    await a!.stop()
    const fromC: ReadSources = { cache: 0, disk: 0, peers: {} }
    expect(sameBytes(await b!.blobs.get(ref, { sources: fromC }), bytes)).toBe(true)
    expect(Object.keys(fromC.peers)).toEqual(["n2"])
  })
})
