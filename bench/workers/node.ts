/**
 * A process hosting one or more Dataforts nodes for bench/transfer, driven over stdin by
 * JSON-lines commands `{ id, cmd, args }`; replies are `@rpc { id, ok, result | error }` on
 * stdout. Commands run concurrently. Each node has its own NATS connection and its own
 * file-backed store. Closing stdin closes every node, removes their dirs and exits.
 *
 *   node --import tsx bench/workers/node.ts
 */
import { mkdir, rm } from "node:fs/promises"
import { createInterface } from "node:readline"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { BlobRef, Blobs, fetchBlob, type ReadSources } from "../../plugin/index.ts"
import { decodeManifest } from "../../storage/format/manifest.ts"
import { toHex } from "../../storage/format/hex.ts"
import { BufferPool } from "../../plugin/buffer-pool.ts"
import { FileChunkStore } from "../../storage/file-chunk-store.ts"
import { seededBytes, seededStream } from "../../test/support/bytes.ts"
import { benchTunesMalloc, now } from "./measure.ts"

// BENCH_MEM_TRACE=<path>: append this process's memory composition every 250 ms to <path>.<pid> (development)
if (process.env.BENCH_MEM_TRACE) {
  const { appendFileSync, readFileSync } = await import("node:fs")
  const file = `${process.env.BENCH_MEM_TRACE}.${process.pid}`
  /** Resident KiB of each mapping over 4 MiB resident (which allocator grows). */
  const bigMaps = () => {
    const out: Record<string, number> = {}
    let name = ""
    for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
      if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
        const fields = line.split(/\s+/) // address range, perms, offset, dev, inode, path
        name = [fields[0], ...fields.slice(5)].join(" ")
      } else if (line.startsWith("Rss:")) {
        const kb = Number(line.split(/\s+/)[1])
        if (kb > 4096) out[name] = kb
      }
    }
    return out
  }
  setInterval(() => appendFileSync(file, `${JSON.stringify({ t: Date.now(), ...process.memoryUsage(), maps: bigMaps() })}\n`), 250).unref()
}

interface Node {
  nc: NatsConnection
  blobs: Blobs
  dir: string
  node: string
  cacheBytes: number | undefined
  pull?: { ctrl: AbortController; done: Promise<void>; bytes: number; partial: number; loops: number; t0: number }
}

interface Args {
  name: string
  url: string
  node: string
  prefix: string
  dir: string
  cacheBytes?: number
  size: number
  seed: number
  count: number
  ref: string
  refs: string[]
  timeoutMs?: number
  remove?: boolean
  subject?: string
  rrSubject?: string
}

const nodes = new Map<string, Node>()

function nodeOf(name: string): Node {
  const n = nodes.get(name)
  if (n === undefined) throw new Error(`no node ${name}`)
  return n
}

function openBlobs(n: { nc: NatsConnection; dir: string; node: string; cacheBytes: number | undefined }, prefix: string): Promise<Blobs> {
  return Blobs.open({
    dir: n.dir,
    nats: n.nc,
    node: n.node,
    prefix,
    discoveryTimeoutMs: 10_000,
    tuneMalloc: benchTunesMalloc,
    ...(n.cacheBytes === undefined ? {} : { cacheBytes: n.cacheBytes }),
  })
}

const mib = (b: number) => Math.round(b / 1024 / 1024)

const handlers: Record<string, (a: Args) => Promise<unknown>> = {
  async open(a) {
    if (nodes.has(a.name)) throw new Error(`node ${a.name} exists`)
    await mkdir(a.dir, { recursive: true })
    const nc = await connect({ servers: a.url, name: a.node })
    const base = { nc, dir: a.dir, node: a.node, cacheBytes: a.cacheBytes }
    const blobs = await openBlobs(base, a.prefix)
    nodes.set(a.name, { ...base, blobs })
    return { node: a.node }
  },

  /** Closes the node's Blobs and opens the same store under a new prefix (it re-advertises what it holds). */
  async reopen(a) {
    const n = nodeOf(a.name)
    await n.blobs.close()
    n.blobs = await openBlobs(n, a.prefix)
    return {}
  },

  async put(a) {
    const n = nodeOf(a.name)
    const t0 = now()
    const ref = await n.blobs.put(seededStream(a.size, a.seed))
    const ms = now() - t0
    return { ref: ref.toString(), ms, maxRssMiB: mib(process.resourceUsage().maxRSS * 1024) }
  },

  async putMany(a) {
    const n = nodeOf(a.name)
    const refs: string[] = []
    for (let i = 0; i < a.count; i++) refs.push((await n.blobs.put(seededBytes(a.size, a.seed + i))).toString())
    return { refs }
  },

  /** Waits until this node's folds know a live holder of every ref (outside any timed section). */
  async awaitHolders(a) {
    const n = nodeOf(a.name)
    const t0 = now()
    const deadline = Date.now() + (a.timeoutMs ?? 20_000)
    for (const text of a.refs) {
      const hex = BlobRef.parse(text).hex
      while (n.blobs.mesh!.folds.nearestHolders(hex).length === 0) {
        if (Date.now() > deadline) throw new Error(`${a.name}: no holder known for ${text}`)
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    return { ms: now() - t0 }
  },

  /** `blobs.read` consumed in order; bytes counted, not kept. */
  async read(a) {
    const n = nodeOf(a.name)
    const ref = BlobRef.parse(a.ref)
    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    const t0 = now()
    let bytes = 0
    for await (const part of n.blobs.read(ref, { sources })) bytes += part.length
    const t1 = now()
    if (bytes !== ref.size) throw new Error(`short read: ${bytes} of ${ref.size}`)
    return { ms: t1 - t0, t0, t1, bytes, sources, maxRssMiB: mib(process.resourceUsage().maxRSS * 1024) }
  },

  async fetch(a) {
    const n = nodeOf(a.name)
    const t0 = now()
    const { sources } = await fetchBlob(n.blobs, a.ref)
    const t1 = now()
    return { ms: t1 - t0, t0, t1, sources, maxRssMiB: mib(process.resourceUsage().maxRSS * 1024) }
  },

  /**
   * The transport alone: every chunk of `ref` fetched from holder `a` and verified, six at
   * a time into pooled buffers like fetchBlob, but nothing stored (where the time goes).
   */
  async fetchNoStore(a) {
    const n = nodeOf(a.name)
    const ref = BlobRef.parse(a.ref)
    const mesh = n.blobs.mesh!
    const hashBackend = n.blobs.store.hasher
    const t0 = now()
    const manifest = await mesh.receiver.fetch({ hash: ref.hex, holders: ["a"], hashBackend })
    const entries = decodeManifest(manifest.bytes, ref.size).entries
    const pool = new BufferPool(32 << 20)
    let next = 0
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (next < entries.length) {
          const e = entries[next++]!
          const taken: Uint8Array[] = []
          await mesh.receiver.fetch({ hash: toHex(e.hash), holders: ["a"], hashBackend, expectedLength: e.length, into: (len) => (taken.push(pool.take(len)), taken.at(-1)!) })
          for (const b of taken) pool.release(b)
        }
      }),
    )
    const t1 = now()
    return { ms: t1 - t0, t0, t1, sources: { cache: 0, disk: 0, peers: { a: ref.size } }, maxRssMiB: mib(process.resourceUsage().maxRSS * 1024) }
  },

  /** Answers requests on `subject` with `size` bytes (the bare request/reply baseline). */
  async echo(a) {
    const n = nodeOf(a.name)
    const reply = new Uint8Array(a.size).fill(5)
    n.nc.subscribe(a.subject!, { callback: (_err, msg) => void msg.respond(reply) })
    await n.nc.flush()
    return {}
  },

  /**
   * Gets each ref one after another; latency per get (ms). With `rrSubject`, each get is
   * preceded by one bare NATS request on it (latency in `rr`), so both see the same load.
   */
  async gets(a) {
    const n = nodeOf(a.name)
    const lat: number[] = []
    const rr: number[] = []
    const ends: number[] = []
    for (const text of a.refs) {
      const ref = BlobRef.parse(text)
      if (a.rrSubject) {
        const r0 = now()
        await n.nc.request(a.rrSubject, new Uint8Array(0), { timeout: 10_000 })
        rr.push(now() - r0)
      }
      const t0 = now()
      const bytes = await n.blobs.get(ref)
      const t1 = now()
      if (bytes.length !== ref.size) throw new Error("short get")
      lat.push(t1 - t0)
      ends.push(t1)
    }
    return { lat, rr, ends }
  },

  /**
   * Starts pulling `ref` over and over (fetchBlob, then delete, again) until `pullStop`;
   * resolves once the first bytes of the first pull have arrived.
   */
  async pullLoop(a) {
    const n = nodeOf(a.name)
    if (n.pull) throw new Error("pull already running")
    const ctrl = new AbortController()
    let started!: () => void
    let failed!: (e: unknown) => void
    const first = new Promise<void>((resolve, reject) => ((started = resolve), (failed = reject)))
    const pull = { ctrl, done: Promise.resolve(), bytes: 0, partial: 0, loops: 0, t0: now() }
    n.pull = pull
    pull.done = (async () => {
      while (!ctrl.signal.aborted) {
        pull.partial = 0
        await fetchBlob(n.blobs, a.ref, {
          signal: ctrl.signal,
          onProgress: (p) => {
            pull.partial = p.bytes
            if (p.bytes > 0) started()
          },
        })
        pull.bytes += BlobRef.parse(a.ref).size
        pull.partial = 0
        pull.loops++
        await n.blobs.delete(a.ref)
      }
    })().catch((err: unknown) => {
      if (!ctrl.signal.aborted) failed(err)
    })
    await first
    return { t0: pull.t0 }
  },

  async pullStop(a) {
    const n = nodeOf(a.name)
    const pull = n.pull
    if (!pull) throw new Error("no pull running")
    const t1 = now()
    const bytes = pull.bytes + pull.partial
    pull.ctrl.abort()
    await pull.done
    delete n.pull
    return { bytes, loops: pull.loops, ms: t1 - pull.t0 }
  },

  async stats(a) {
    return nodeOf(a.name).blobs.mesh!.sender.stats()
  },

  /**
   * The receiver's storage floor without any network: writes `size` bytes as 4 MiB chunks
   * through the chunk store's own write (fetched-chunk mode: around the page cache) under `dir`,
   * which the driver removes.
   */
  async diskWrite(a) {
    const piece = seededBytes(4 << 20, a.seed)
    const store = await FileChunkStore.open(a.dir)
    const u0 = process.resourceUsage()
    const t0 = now()
    for (let off = 0, i = 0; off < a.size; off += piece.length, i++) {
      const hex = i.toString(16).padStart(64, "0")
      await store.write(hex, piece.subarray(0, Math.min(piece.length, a.size - off)), { bypassPageCache: true })
    }
    const ms = now() - t0
    const u1 = process.resourceUsage()
    await store.close()
    return { ms, cpuS: (u1.userCPUTime + u1.systemCPUTime - u0.userCPUTime - u0.systemCPUTime) / 1e6 }
  },

  /** Peak and current RSS, and CPU seconds used by this process so far (user + system). */
  async rss() {
    const u = process.resourceUsage()
    return { maxRssMiB: mib(u.maxRSS * 1024), rssMiB: mib(process.memoryUsage().rss), cpuS: (u.userCPUTime + u.systemCPUTime) / 1e6, userS: u.userCPUTime / 1e6, sysS: u.systemCPUTime / 1e6, minorFaults: u.minorPageFault }
  },

  async close(a) {
    const n = nodeOf(a.name)
    nodes.delete(a.name)
    n.pull?.ctrl.abort()
    await n.pull?.done
    await n.blobs.close()
    await n.nc.close()
    if (a.remove) await rm(n.dir, { recursive: true, force: true })
    return {}
  },
}

function reply(id: number, body: { ok: true; result: unknown } | { ok: false; error: string }): void {
  process.stdout.write(`@rpc ${JSON.stringify({ id, ...body })}\n`)
}

const rl = createInterface({ input: process.stdin })
rl.on("line", (line) => {
  if (!line.trim()) return
  const { id, cmd, args } = JSON.parse(line) as { id: number; cmd: string; args: Args }
  const h = handlers[cmd]
  if (h === undefined) return reply(id, { ok: false, error: `unknown command ${cmd}` })
  h(args).then(
    (result) => reply(id, { ok: true, result }),
    (err: unknown) => reply(id, { ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
  )
})
rl.on("close", () => {
  // the driver closed stdin (or died): close every node, remove its dir, exit
  const timer = setTimeout(() => process.exit(1), 10_000)
  timer.unref()
  void Promise.allSettled(
    [...nodes.entries()].map(async ([name, n]) => {
      nodes.delete(name)
      n.pull?.ctrl.abort()
      await n.blobs.close().catch(() => {})
      await n.nc.close().catch(() => {})
      await rm(n.dir, { recursive: true, force: true })
    }),
  ).then(() => process.exit(0))
})
