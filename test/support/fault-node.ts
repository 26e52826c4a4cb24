/**
 * Nodes for the server-fault tests: like nodes.ts, but the connection takes a list of
 * servers (a client fails over across a cluster) and nats.js reconnect options, so a test
 * can restart or kill the server under a node and watch it come back.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import type { ConnectionOptions, NatsConnection, Status } from "@nats-io/nats-core"
import { Blobs, type BlobsAttachOptions } from "../../plugin/index.ts"
import { loadHashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { seededStream } from "./bytes.ts"
import type { TestNode } from "./nodes.ts"

/** Reconnect settings of the fault tests: retry every 250 ms for up to 60 s (nats.js defaults: 2 s, 10 tries). */
export const RECONNECT: Partial<ConnectionOptions> = { reconnectTimeWait: 250, maxReconnectAttempts: 240 }

export interface FaultNode extends TestNode {
  /** nats.js status events seen on this node's connection, in order (`disconnect`, `reconnect`, ...). */
  readonly statuses: string[]
  /** When each of `statuses` was seen (Date.now()). */
  readonly statusAt: number[]
}

export async function startFaultNode(servers: string[], name: string, options: Partial<BlobsAttachOptions> = {}, connectOptions: Partial<ConnectionOptions> = RECONNECT): Promise<FaultNode> {
  const nc: NatsConnection = await connect({ servers, ...connectOptions })
  const statuses: string[] = []
  const statusAt: number[] = []
  void (async () => {
    for await (const s of nc.status() as AsyncIterable<Status>) {
      statuses.push(s.type)
      statusAt.push(Date.now())
    }
  })().catch(() => {})
  const dir = await mkdtemp(join(tmpdir(), `df-fault-${name}-`))
  const blobs = await Blobs.open({ dir, nats: nc, node: name, heartbeatMs: 200, discoveryTimeoutMs: 2000, idleTimeoutMs: 1500, cacheBytes: 0, ...options })
  let stopped = false
  return {
    name,
    nc,
    blobs,
    dir,
    statuses,
    statusAt,
    async stop() {
      if (stopped) return
      stopped = true
      await blobs.close().catch(() => {})
      await nc.close().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** BLAKE3 of the seeded stream `seededStream(size, seed)`: what a verified read of it must hash to. */
export async function seededDigest(size: number, seed: number): Promise<string> {
  const h = (await loadHashBackend("native")).create()
  for await (const p of seededStream(size, seed)) h.update(p)
  return toHex(h.digest())
}

/** Milliseconds from `since` to the node's first `reconnect` after it (undefined if none). */
export function reconnectedAfter(node: FaultNode, since: number): number | undefined {
  for (let i = 0; i < node.statuses.length; i++) if (node.statuses[i] === "reconnect" && node.statusAt[i]! >= since) return node.statusAt[i]! - since
  return undefined
}

let digests: Map<string, Promise<string>> | undefined
/** {@link seededDigest}, computed once per process for each (size, seed). */
export function seededDigestOnce(size: number, seed: number): Promise<string> {
  digests ??= new Map()
  const key = `${size}/${seed}`
  let d = digests.get(key)
  if (d === undefined) digests.set(key, (d = seededDigest(size, seed)))
  return d
}

/** The port of a `nats://127.0.0.1:PORT` URL (to restart a server on it). */
export const portOf = (url: string): number => Number(new URL(url).port)

/** True once a message published on `from` reaches a subscriber on `to` (the route is up). */
export async function routed(from: string, to: string): Promise<boolean> {
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
