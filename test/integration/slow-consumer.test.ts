import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import { afterEach, describe, expect, it } from "vitest"
import { BlobRef } from "../../plugin/index.ts"
import { loadHashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { seededStream } from "../support/bytes.ts"
import { spawnTs } from "../support/child.ts"
import { type FaultNode, seededDigestOnce, startFaultNode } from "../support/fault-node.ts"
import { type NatsServerHandle, startNatsServer } from "../support/nats-server.ts"
import { freshPrefix } from "../support/nodes.ts"
import { until } from "../support/poll.ts"
import { tempDir } from "../support/temp.ts"

const SIZE = 64 << 20
const SEED = 61
const STALL_MS = 4000
/** Upper bound from the stall's end to the read's end, retry included (measured: a few seconds). */
const BOUND_MS = 60_000
/**
 * A write to a client that blocks for 1 s makes the server cut the client off as a slow
 * consumer (nats-server's default is 10 s; the stalls below last 4 s).
 */
const SLOW_CONSUMER_CONFIG = 'write_deadline: "1s"\n'

describe("a node stalled past the server's slow-consumer limit", () => {
  let server: NatsServerHandle | undefined
  const nodes: FaultNode[] = []
  const cleanups: Array<() => Promise<unknown>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c()
    for (const n of nodes.splice(0)) await n.stop()
    await server?.stop()
    server = undefined
  })

  // sixteen chunks in flight, ~2 MB of credit each: more than the loopback socket buffers take;
  // an idle timeout (3 s) below the stall (4 s): a reader must not blame its holder for its
  // own stall, nor for the outage that follows (its connection is down: nobody is to blame)
  it("a reader blocked for 4 s while frames pour in is cut off, reconnects, and its read recovers verified", async () => {
    server = await startNatsServer({ config: SLOW_CONSUMER_CONFIG })
    const prefix = freshPrefix()
    const tmp = await tempDir("df-slow-reader-")
    cleanups.push(() => tmp.remove())
    const a = await startFaultNode([server.url], "a", { prefix })
    nodes.push(a)
    const [ref, digest] = await Promise.all([a.blobs.put(seededStream(SIZE, SEED)), seededDigestOnce(SIZE, SEED)])
    const reader = spawnTs("child-stall.ts", [JSON.stringify({ mode: "read", url: server.url, prefix, node: "b", dir: join(tmp.path, "b"), ref: ref.toString(), stallAfter: 8 << 20, stallMs: STALL_MS, attach: { chunkConcurrency: 16, idleTimeoutMs: 3000 } })])
    cleanups.push(async () => reader.proc.kill("SIGKILL"))
    const result = await reader.line((l) => l.startsWith("read "), BOUND_MS + STALL_MS + 15_000)
    const [, outcome, value, ms] = result.split(" ")
    const retry = outcome === "ok" ? undefined : await reader.line((l) => l.startsWith("retry "), BOUND_MS)
    const failures = JSON.parse((await reader.line((l) => l.startsWith("failures "))).slice(9)) as Record<string, number>
    const statuses = (await reader.line((l) => l.startsWith("statuses "))).split(" ")[1]!.split(",")
    console.log(`slow reader: ${result} ms after the stall; ${retry ?? "no retry"}; failures ${JSON.stringify(failures)}; statuses ${statuses}`)
    // the server cut it off and it came back
    expect(statuses).toContain("disconnect")
    expect(statuses).toContain("reconnect")
    if (outcome === "ok") expect(value).toBe(digest)
    else expect(retry).toBe(`retry ok ${digest}`)
    expect(Number(ms)).toBeLessThan(BOUND_MS)
    // the stall was the reader's own: the holder that kept sending is not blamed for it
    expect(failures).toEqual({})
    expect(await reader.exited).toBe(0)
  }, 90_000)

  it("a holder blocked for 4 s while messages pile up for it is cut off, reconnects, and the read from it recovers verified", async () => {
    server = await startNatsServer({ config: SLOW_CONSUMER_CONFIG })
    const prefix = freshPrefix()
    const tmp = await tempDir("df-slow-holder-")
    cleanups.push(() => tmp.remove())
    const holder = spawnTs("child-stall.ts", [JSON.stringify({ mode: "hold", url: server.url, prefix, node: "a", dir: join(tmp.path, "a"), size: SIZE, seed: SEED })])
    cleanups.push(async () => holder.proc.kill("SIGKILL"))
    const ref = BlobRef.parse((await holder.line((l) => l.startsWith("ref "))).slice(4))
    const digest = await seededDigestOnce(SIZE, SEED)
    // the default idle (5 s) and discovery (3 s) timeouts: a holder quiet for 4 s is waited out
    const b = await startFaultNode([server.url], "b", { prefix, readAheadBytes: 16 << 20, idleTimeoutMs: 5000, discoveryTimeoutMs: 3000 })
    nodes.push(b)
    const pub = await connect({ servers: server.url })
    cleanups.push(() => pub.close())
    await until(() => b.blobs.mesh!.folds.nearestHolders(ref.hex).includes("a"), "b sees a as a holder")

    let stalledAt: number | undefined
    // once 8 MiB have arrived: block the holder, then pile 24 MiB of ballast onto its subscription
    const watch = setInterval(() => {
      if (stalledAt !== undefined || b.blobs.mesh!.receiver.stats().bytesReceived < 8 << 20) return
      stalledAt = Date.now()
      pub.publish(`${prefix}.test.stall.a`, new TextEncoder().encode(String(STALL_MS)))
      const ballast = new Uint8Array(1 << 20)
      for (let i = 0; i < 24; i++) pub.publish(`${prefix}.test.stall.a`, ballast)
    }, 1)
    const read = async (): Promise<string> => {
      const h = (await loadHashBackend("native")).create()
      for await (const part of b.blobs.read(ref)) h.update(part)
      return toHex(h.digest())
    }
    let first: string
    try {
      first = await read().catch((err: { code?: string }) => `err ${err.code ?? String(err)}`)
    } finally {
      clearInterval(watch)
    }
    const firstAt = Date.now()
    const retried = first === digest ? undefined : await read()
    const endedAt = Date.now()
    // the holder was cut off and came back
    await until(() => holder.lines.some((l) => l.startsWith("statuses ") && l.includes("reconnect")), "the holder reconnected", 20_000)
    const statuses = holder.lines.filter((l) => l.startsWith("statuses ")).at(-1)!
    console.log(`slow holder: first read ${first === digest ? "verified" : first} ${firstAt - stalledAt! - STALL_MS} ms after the stall's end; ${retried === undefined ? "no retry" : `retry ${retried === digest ? "verified" : retried}`} ${endedAt - stalledAt! - STALL_MS} ms after it; faultResumes ${JSON.stringify(b.blobs.mesh!.receiver.stats().faultResumes)} refetches ${b.blobs.mesh!.refetches} failures ${JSON.stringify(b.blobs.mesh!.holderFailures)}; holder ${statuses}`)
    expect(stalledAt).toBeDefined()
    expect(statuses).toContain("disconnect")
    if (first !== digest) expect(first).toMatch(/^err (NO_HOLDER|TIMEOUT)$/)
    expect(retried ?? first).toBe(digest)
    expect(endedAt - stalledAt!).toBeLessThan(BOUND_MS)
  }, 90_000)
})
