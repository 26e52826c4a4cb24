import { randomUUID } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { Blobs, type BlobsAttachOptions } from "../../plugin/index.ts"

export interface TestNode {
  readonly name: string
  readonly nc: NatsConnection
  readonly blobs: Blobs
  readonly dir: string
  stop(): Promise<void>
}

/** A fresh prefix per test, so tests share one server without seeing each other. */
export const freshPrefix = () => `dft${randomUUID().replaceAll("-", "").slice(0, 12)}`

/** A node: its own connection, its own durable store in a temp dir, attached to the mesh. */
export async function startNode(url: string, name: string, options: Partial<BlobsAttachOptions> = {}): Promise<TestNode> {
  const nc = await connect({ servers: url })
  const dir = await mkdtemp(join(tmpdir(), `df-node-${name}-`))
  const blobs = await Blobs.open({ dir, nats: nc, node: name, heartbeatMs: 200, discoveryTimeoutMs: 2000, idleTimeoutMs: 1500, ...options })
  let stopped = false
  return {
    name,
    nc,
    blobs,
    dir,
    async stop() {
      if (stopped) return
      stopped = true
      await blobs.close()
      await nc.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
