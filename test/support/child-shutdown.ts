/**
 * Shutdown in any order, in its own process (run with `node --import tsx`):
 *   child-shutdown.ts <natsUrl> <order>
 * Two durable nodes attached to NATS (each its own connection): a puts a few MiB, b reads
 * them from a (transfers, idle sweeps, pacing PINGs, heartbeats, pings, syncs all ran), then:
 *   nats-first      every connection closed, then blobs.close()
 *   nats-only       the connections closed, later calls fail typed and fast; blobs.close() never called
 *   blobs-first     blobs.close(), then the connections
 *   mid-transfer    the connections closed while b streams a blob from a; then blobs.close()
 *   drain-first     nc.drain() on every connection, then blobs.close()
 * It prints "done" and returns from main without process.exit: whatever it leaked keeps it
 * alive, and process.getActiveResourcesInfo() on stderr shows what.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { Blobs, type BlobRef, DatafortsError, fetchBlob } from "../../plugin/index.ts"
import { seededStream } from "./bytes.ts"

const [url, order] = process.argv.slice(2)
const prefix = `dfshut${process.pid}`
const log = (s: string) => process.stderr.write(`[child-shutdown ${order}] ${s}\n`)

interface Node {
  nc: NatsConnection
  blobs: Blobs
  dir: string
}

async function node(name: string): Promise<Node> {
  const nc = await connect({ servers: url! })
  const dir = await mkdtemp(join(tmpdir(), `df-shut-${name}-`))
  // tuneMalloc: the allocator's quiet watch runs too
  const blobs = await Blobs.open({ dir, nats: nc, node: name, prefix, heartbeatMs: 200, discoveryTimeoutMs: 2000, idleTimeoutMs: 1500, tuneMalloc: true })
  return { nc, blobs, dir }
}

/** Runs `f`, which must fail with a typed error (CLOSED or NO_HOLDER) within `ms`. */
async function failsTyped(what: string, f: () => Promise<unknown>, ms = 3000): Promise<void> {
  const t0 = performance.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  const hung = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), ms)))
  const got = await Promise.race([f().then(() => "ok" as const, (err: unknown) => err), hung])
  clearTimeout(timer)
  if (got === "hung") throw new Error(`${what}: still pending after ${ms} ms`)
  if (got === "ok") throw new Error(`${what}: succeeded on a closed connection`)
  if (!(got instanceof DatafortsError) || (got.code !== "CLOSED" && got.code !== "NO_HOLDER")) throw new Error(`${what}: failed untyped: ${String(got)}`)
  log(`${what}: ${got.code} after ${Math.round(performance.now() - t0)} ms`)
}

/** Closes `blobs` (twice, concurrently, and once more after) and checks it was prompt. */
async function closeBlobs(n: Node, name: string, boundMs = 2000): Promise<void> {
  const t0 = performance.now()
  await Promise.all([n.blobs.close(), n.blobs.close()])
  await n.blobs.close()
  const ms = performance.now() - t0
  log(`blobs.close() of ${name}: ${Math.round(ms)} ms`)
  if (ms > boundMs) throw new Error(`blobs.close() of ${name} took ${Math.round(ms)} ms`)
}

async function main(): Promise<void> {
  const a = await node("a")
  const b = await node("b")
  const big = await a.blobs.put(seededStream(6 << 20, 7))
  const other = await a.blobs.put(seededStream(3 << 20, 8))
  const small = await a.blobs.put(seededStream(40_000, 9))
  // mid-transfer: many chunks (4 MiB average), so a read stopped after its first one still has
  // fetches in flight and more to start
  const onlyA = await a.blobs.put(seededStream(order === "mid-transfer" ? 48 << 20 : 2 << 20, 10))
  await a.blobs.get(big) // local read: heat
  const got = await b.blobs.get(big) // from a: transfers
  if (got.length !== big.size) throw new Error("short read")
  await fetchBlob(b.blobs, other)
  await b.blobs.get(small)
  await b.blobs.mesh!.ensureLocal([small])
  const conns = [a.nc, b.nc]

  switch (order) {
    case "nats-first": {
      // the reported order, with holder adverts out (20 ms batches) and a heat batch (250 ms) pending
      await new Promise((r) => setTimeout(r, 60))
      await b.blobs.get(small)
      await Promise.all(conns.map((nc) => nc.close()))
      await closeBlobs(a, "a")
      await closeBlobs(b, "b")
      await failsTyped("get after blobs.close()", () => b.blobs.get(onlyA))
      break
    }
    case "blobs-first": {
      await closeBlobs(a, "a")
      await closeBlobs(b, "b")
      await Promise.all(conns.map((nc) => nc.close()))
      break
    }
    case "nats-only": {
      await Promise.all(conns.map((nc) => nc.close()))
      await laterCallsFail(b, onlyA)
      // blobs.close() never called: the nodes must stop on their own
      break
    }
    case "mid-transfer": {
      const stream = b.blobs.read(onlyA)
      const it = stream[Symbol.asyncIterator]()
      await it.next() // the first chunk arrived: later ones are in flight
      await Promise.all(conns.map((nc) => nc.close()))
      await failsTyped("the rest of a read in flight", async () => {
        for (let r = await it.next(); !r.done; r = await it.next());
      })
      await closeBlobs(a, "a")
      await closeBlobs(b, "b")
      break
    }
    case "drain-first": {
      await Promise.all(conns.map((nc) => nc.drain()))
      await closeBlobs(a, "a")
      await closeBlobs(b, "b")
      break
    }
    default:
      throw new Error(`unknown order ${order}`)
  }
  for (const n of [a, b]) await rm(n.dir, { recursive: true, force: true })
}

/** A node whose connection closed: mesh calls fail typed and fast; local ones still work. */
async function laterCallsFail(n: Node, remote: BlobRef): Promise<void> {
  await failsTyped("get of a blob only a peer holds", () => n.blobs.get(remote))
  await failsTyped("fetchBlob of a blob only a peer holds", () => fetchBlob(n.blobs, remote))
  // the local store stays usable
  const ref = await n.blobs.put(new Uint8Array(1000).fill(3))
  if ((await n.blobs.get(ref)).length !== 1000) throw new Error("local get after the connection closed")
}

await main()
process.stdout.write("done\n")
// what is still alive (timers, sockets, handles) when main returns: the test shows it on failure
log(`active resources: ${JSON.stringify(process.getActiveResourcesInfo())}`)
