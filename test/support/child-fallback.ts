/**
 * A process that moves bytes on whatever its runtime leaves it (run with `node [--jitless]
 * --import tsx`, maybe under `ulimit -v`): opens a durable node on a real nats-server, puts
 * seeded bytes, gets them back, opens a second node in the same process that fetches the blob
 * from the first over the bus and reads it, and reports which paths it took:
 *
 *   node --import tsx test/support/child-fallback.ts <natsUrl> <dir> <bytes> <seed>
 *     → one JSON line (FallbackReport)
 *
 * FALLBACK_HEARTBEAT_MS sets the nodes' heartbeat (default 1000 ms).
 * With FALLBACK_AS_HEADROOM_GIB=n it first lowers its own address-space limit (RLIMIT_AS, what
 * `ulimit -v` sets) to what it uses now plus n GiB: ordinary allocations still succeed, but a
 * WebAssembly.Memory, for which V8 reserves ~10 GiB of address space, fails. (A limit set
 * before Node starts cannot tell the two apart: tsx itself instantiates wasm at startup.)
 *
 * Bytes are compared by SHA-256 (node:crypto, native, so the comparison itself is quick under
 * --jitless); the store verifies BLAKE3 on its own.
 */
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { arenaStats as ArenaStats } from "../../plugin/receive-arenas.ts"
import type { chunkWriteStats as ChunkWriteStats } from "../../storage/file-chunk-store.ts"

export interface FallbackReport {
  /** The address-space limit set (bytes), or null. */
  addressSpaceLimit: number | null
  webAssembly: string
  alignedMemory: boolean
  /** Hash backend of the producer and of the fetching node. */
  hash: [string, string]
  chunks: number
  same: { get: boolean; fetch: boolean; fetchedGet: boolean }
  /** Fetched bytes credited to the producer, by the fetching node's read sources. */
  fetchedFromPeer: number
  arenas: typeof ArenaStats
  writes: typeof ChunkWriteStats
  ms: { put: number; get: number; fetch: number; fetchedGet: number }
}

const [url, dir, size, seed] = process.argv.slice(2)
let addressSpaceLimit: number | null = null
if (process.env.FALLBACK_AS_HEADROOM_GIB) {
  // tsx instantiates its wasm lexers in the background at startup; should one still be on its
  // way when the limit lands, it fails, and tsx parses without it: that rejection (only that) is harmless
  process.on("unhandledRejection", (err) => {
    if (!(err instanceof RangeError && String(err.stack).includes("/tsx/"))) throw err
  })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const vmBytes = Number(/VmSize:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024
  addressSpaceLimit = vmBytes + Number(process.env.FALLBACK_AS_HEADROOM_GIB) * 2 ** 30
  execFileSync("prlimit", ["--pid", String(process.pid), `--as=${addressSpaceLimit}`])
}
// imported after the limit, so nothing of the package ran before it
const { connect } = await import("@nats-io/transport-node")
const { Blobs, fetchBlob } = await import("../../plugin/index.ts")
const { arenaStats } = await import("../../plugin/receive-arenas.ts")
const { alignedMemoryAvailable } = await import("../../storage/direct-write.ts")
const { chunkWriteStats } = await import("../../storage/file-chunk-store.ts")
const { seededBytes } = await import("./bytes.ts")

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
const bytes = seededBytes(Number(size), Number(seed))
const want = sha(bytes)
const prefix = `fb${process.pid}`
const time = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t = performance.now()
  const v = await f()
  return [v, Math.round(performance.now() - t)]
}

const nc = await connect({ servers: url! })
// both nodes share one event loop, which the pure-JS hash blocks for seconds per chunk under
// --jitless: liveness (3 heartbeats) and the idle timeout must outlast that
const timers = { heartbeatMs: Number(process.env.FALLBACK_HEARTBEAT_MS ?? 1000), idleTimeoutMs: 60_000, discoveryTimeoutMs: 30_000 }
const a = await Blobs.open({ dir: join(dir!, "a"), nats: nc, node: `${prefix}-a`, prefix, cacheBytes: 0, ...timers })
const b = await Blobs.open({ dir: join(dir!, "b"), nats: nc, node: `${prefix}-b`, prefix, cacheBytes: 0, ...timers })
const [ref, put] = await time(() => a.put(bytes))
const [got, get] = await time(() => a.get(ref))
const [fetched, fetch] = await time(() => fetchBlob(b, ref))
const [fetchedBytes, fetchedGet] = await time(() => b.get(ref))
const report: FallbackReport = {
  addressSpaceLimit,
  webAssembly: typeof (globalThis as { WebAssembly?: unknown }).WebAssembly,
  alignedMemory: alignedMemoryAvailable(),
  hash: [a.store.hasher.name, b.store.hasher.name],
  chunks: (await a.stat(ref))?.chunks ?? 0,
  same: { get: sha(got) === want, fetch: fetched.ref.equals(ref), fetchedGet: sha(fetchedBytes) === want },
  fetchedFromPeer: fetched.sources.peers[`${prefix}-a`] ?? 0,
  arenas: arenaStats,
  writes: chunkWriteStats,
  ms: { put, get, fetch, fetchedGet },
}
await b.close()
await a.close()
await nc.close()
process.stdout.write(`${JSON.stringify(report)}\n`)
