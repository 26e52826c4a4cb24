/**
 * One soak node in its own process (`node --import tsx test/support/soak-node.ts`), driven by
 * the soak engine (test/support/soak.ts) over stdin with JSON lines `{ id, cmd, args }`;
 * replies are `@rpc { id, ok, result | error }` on stdout. Commands run concurrently. A node
 * in its own process is what makes RSS and file descriptors per node, and lets the engine
 * kill -9 a holder. Closing stdin closes the node and exits (no orphan outlives its driver).
 */
import { createHash } from "node:crypto"
import { readdirSync, readlinkSync } from "node:fs"
import { createInterface } from "node:readline"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { BlobRef, Blobs, ClosedError, DatafortsError, fetchBlob } from "../../plugin/index.ts"
import { seededStream } from "./bytes.ts"

interface Args {
  url: string
  prefix: string
  node: string
  dir: string
  cacheBytes: number
  size: number
  seed: number
  ref: string
  mode: "read" | "fetch" | "get"
  keep: string[]
}

let nc: NatsConnection | undefined
let blobs: Blobs | undefined

const open = () => {
  // between a leave and the next join the node is closed, as a closed Blobs would say
  if (blobs === undefined) throw new ClosedError()
  return blobs
}

/** Subscriptions the client holds (nats.js keeps them in its protocol handler), as mesh-leaks.test.ts counts them. */
const subscriptions = (c: NatsConnection | undefined) => (c ? (c as unknown as { protocol: { subscriptions: { size(): number } } }).protocol.subscriptions.size() : 0)

/** Open file descriptors, split into the store index's (LevelDB keeps table files open in its cache) and the rest. */
function fds(dir: string | undefined): { total: number; index: number } {
  let total = 0
  let index = 0
  for (const fd of readdirSync("/proc/self/fd")) {
    total++
    try {
      if (dir !== undefined && readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/index`)) index++
    } catch {
      // closed between the listing and the readlink (the listing's own fd)
    }
  }
  return { total, index }
}

let dirOpen: string | undefined

const handlers: Record<string, (a: Args) => Promise<unknown>> = {
  async open(a) {
    if (blobs !== undefined) throw new Error("already open")
    nc = await connect({ servers: a.url, name: a.node })
    blobs = await Blobs.open({ dir: a.dir, nats: nc, node: a.node, prefix: a.prefix, cacheBytes: a.cacheBytes, heartbeatMs: 500, discoveryTimeoutMs: 4000, idleTimeoutMs: 2000 })
    dirOpen = a.dir
    // nats.js opens one shared reply-inbox subscription on a connection's first request: open
    // it now, so every incarnation's subscriptions are alike
    await nc.request(`${a.prefix}.nobody`, new Uint8Array(0), { timeout: 1000 }).catch(() => {})
    return { pid: process.pid }
  },

  /** A holder leaving: the node closes, then its connection (a later `open` joins again on the same dir). */
  async close() {
    const b = blobs
    const c = nc
    blobs = undefined
    nc = undefined
    await b?.close()
    await c?.close()
    return {}
  },

  async put(a) {
    const ref = await open().put(seededStream(a.size, a.seed))
    return { ref: ref.toString() }
  },

  async flush() {
    await open().flush()
    return {}
  },

  /** Deletes every blob here but those in `keep` (a reader killed before its delete held on to one). */
  async prune(a) {
    const b = open()
    const keep = new Set(a.keep)
    const drop: string[] = []
    for await (const s of b.list()) if (!keep.has(s.ref.toString())) drop.push(s.ref.toString())
    for (const r of drop) await b.delete(r)
    return { dropped: drop.length }
  },

  /**
   * Reads a blob this node does not hold and returns the sha256 of what it got (the engine
   * compares it with its own), then deletes it, so this node stays a non-holder:
   * `read` streams it, `fetch` makes it local with fetchBlob then reads it from disk, `get` takes it whole.
   */
  async read(a) {
    const b = open()
    const ref = BlobRef.parse(a.ref)
    const sha = createHash("sha256")
    let bytes = 0
    const peers: Record<string, number> = {}
    try {
      if (a.mode === "get") {
        const got = await b.get(ref)
        sha.update(got)
        bytes = got.length
      } else {
        if (a.mode === "fetch") {
          const { sources } = await fetchBlob(b, ref)
          Object.assign(peers, sources.peers)
        }
        const sources = { cache: 0, disk: 0, peers }
        for await (const part of b.read(ref, { sources })) {
          sha.update(part)
          bytes += part.length
        }
      }
    } finally {
      await b.delete(ref).catch(() => {})
    }
    return { sha: sha.digest("hex"), bytes, peers }
  },

  /** What the soak watches: RSS, fds, NATS subscriptions, timers and handles, transfers in flight. */
  async probe() {
    const resources: Record<string, number> = {}
    for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1
    const mesh = blobs?.mesh
    return {
      pid: process.pid,
      rss: process.memoryUsage().rss,
      heap: process.memoryUsage().heapUsed,
      fds: fds(dirOpen),
      subs: subscriptions(nc),
      timers: resources.Timeout ?? 0,
      resources,
      sending: mesh?.sender.stats().activeTransfers ?? 0,
      fetching: mesh?.receiver.stats().activeFetches ?? 0,
      inFlight: mesh?.bytesInFlight ?? 0,
      holderFailures: mesh?.holderFailures ?? {},
    }
  },
}

function reply(id: number, body: object): void {
  process.stdout.write(`@rpc ${JSON.stringify({ id, ...body })}\n`)
}

const rl = createInterface({ input: process.stdin })
rl.on("line", (line) => {
  if (!line.trim()) return
  const { id, cmd, args } = JSON.parse(line) as { id: number; cmd: string; args: Args }
  const h = handlers[cmd]
  if (h === undefined) return reply(id, { ok: false, error: { message: `unknown command ${cmd}` } })
  h(args).then(
    (result) => reply(id, { ok: true, result }),
    (err: unknown) =>
      reply(id, {
        ok: false,
        // typed: one of ours, with its stable code; anything else is a bug the soak reports
        error: err instanceof DatafortsError ? { code: err.code, message: err.message } : { message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) },
      }),
  )
})
rl.on("close", () => {
  const timer = setTimeout(() => process.exit(1), 10_000)
  timer.unref()
  void handlers.close!({} as Args).then(
    () => process.exit(0),
    () => process.exit(1),
  )
})
