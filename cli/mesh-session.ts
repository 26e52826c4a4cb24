import { mkdtemp, rm } from "node:fs/promises"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { Blobs } from "../plugin/index.ts"
import { UsageError } from "./exit-codes.ts"

/** What a net-mesh run attaches with: server, node id, store folder, prefix, zone. */
export interface SessionOptions {
  server?: string
  node?: string
  dir?: string
  prefix?: string
  zone?: string
  /** How long a read waits for some holder to be known (ms). */
  discoveryMs?: number
}

/** An attached node for one CLI run; `close()` undoes everything it set up. */
export interface Session {
  readonly blobs: Blobs
  readonly nc: NatsConnection
  readonly node: string
  readonly dir: string
  close(): Promise<void>
}

/** `<hostname>-<pid>`, made subject-safe ([A-Za-z0-9_-], at most 128 characters). */
export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9_-]/g, "_").slice(-128)
}

/**
 * Connects to NATS (`--server`, `NATS_URL`, or nats://127.0.0.1:4222) and opens the store
 * (`--dir`, `DATAFORTS_DIR`, or a fresh temp folder that is removed on close) attached to the
 * mesh as `--node` (default `<hostname>-<pid>`).
 */
export async function openSession(opts: SessionOptions): Promise<Session> {
  const node = opts.node ?? defaultNodeId()
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(node)) throw new UsageError(`--node must match [A-Za-z0-9_-]{1,128}: ${node}`)
  const server = opts.server ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222"
  const given = opts.dir ?? process.env.DATAFORTS_DIR
  const dir = given ?? (await mkdtemp(join(tmpdir(), "net-mesh-")))
  const removeDir = () => (given === undefined ? rm(dir, { recursive: true, force: true }) : Promise.resolve())
  let nc: NatsConnection
  try {
    nc = await connect({ servers: server, name: `net-mesh ${node}` })
  } catch (err) {
    await removeDir()
    throw err
  }
  let blobs: Blobs
  try {
    blobs = await Blobs.open({
      dir,
      nats: nc,
      node,
      // a CLI process exists to move bytes: it opts in to holding freed memory (plugin/allocator.ts)
      tuneMalloc: true,
      ...(opts.prefix === undefined ? {} : { prefix: opts.prefix }),
      ...(opts.zone === undefined ? {} : { zone: opts.zone }),
      ...(opts.discoveryMs === undefined ? {} : { discoveryTimeoutMs: opts.discoveryMs }),
    })
  } catch (err) {
    await nc.close().catch(() => {})
    await removeDir()
    throw err
  }
  let closing: Promise<void> | undefined
  return {
    blobs,
    nc,
    node,
    dir,
    close() {
      closing ??= (async () => {
        await blobs.close().catch(() => {})
        await nc.close().catch(() => {})
        await removeDir()
      })()
      return closing
    },
  }
}
