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
}

export async function startFaultNode(servers: string[], name: string, options: Partial<BlobsAttachOptions> = {}, connectOptions: Partial<ConnectionOptions> = RECONNECT): Promise<FaultNode> {
  const nc: NatsConnection = await connect({ servers, ...connectOptions })
  const statuses: string[] = []
  void (async () => {
    for await (const s of nc.status() as AsyncIterable<Status>) statuses.push(s.type)
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

/** The port of a `nats://127.0.0.1:PORT` URL (to restart a server on it). */
export const portOf = (url: string): number => Number(new URL(url).port)
