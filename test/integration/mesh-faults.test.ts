import { readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, describe, expect, inject, it } from "vitest"
import { BlobRef, fetchBlob, type ReadSources } from "../../plugin/index.ts"
import { loadHashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { seededBytes, seededStream } from "../support/bytes.ts"
import { spawnTs } from "../support/child.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"
import { until } from "../support/poll.ts"
import { tempDir } from "../support/temp.ts"
import { sameBytes } from "../support/expect.ts"

async function chunkFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const f of await readdir(join(dir, "chunks"))) for (const c of await readdir(join(dir, "chunks", f))) out.push(join(dir, "chunks", f, c))
  return out
}

async function digestOf(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const h = (await loadHashBackend("native")).create()
  for await (const p of stream) h.update(p)
  return toHex(h.digest())
}

describe("mesh faults", () => {
  const nodes: TestNode[] = []
  const cleanups: Array<() => Promise<unknown>> = []
  const url = inject("natsUrl")
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop()
    for (const c of cleanups.splice(0)) await c()
  })

  it("a holder SIGKILLed mid-transfer: the reader resumes from another holder and finishes verified", async () => {
    const prefix = freshPrefix()
    const tmp = await tempDir("df-kill-")
    cleanups.push(() => tmp.remove())
    const size = 96 << 20
    const h1 = spawnTs("child-node.ts", ["put", url, prefix, "h1", join(tmp.path, "h1"), String(size), "31"])
    cleanups.push(async () => h1.proc.kill("SIGKILL"))
    const ref = BlobRef.parse(await h1.line((l) => l.startsWith("df1-")))
    const h2 = spawnTs("child-node.ts", ["fetch", url, prefix, "h2", join(tmp.path, "h2"), ref.toString()])
    cleanups.push(async () => h2.proc.kill("SIGKILL"))
    await h2.line((l) => l === "have")
    const reader = await startNode(url, "reader", { prefix, chunkConcurrency: 2 })
    nodes.push(reader)
    await until(() => reader.blobs.mesh!.folds.holdersOf(ref.hex).length === 2, "both holders known")

    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    const h = (await loadHashBackend("native")).create()
    let got = 0
    let killed = ""
    for await (const part of reader.blobs.read(ref, { sources })) {
      h.update(part)
      got += part.length
      if (!killed && got >= 16 << 20) {
        // kill whichever holder has served the most so far: it is mid-stream
        killed = (sources.peers.h1 ?? 0) >= (sources.peers.h2 ?? 0) ? "h1" : "h2"
        ;(killed === "h1" ? h1 : h2).proc.kill("SIGKILL")
      }
    }
    expect(got).toBe(size)
    expect(toHex(h.digest())).toBe(await digestOf(seededStream(size, 31)))
    const survivor = killed === "h1" ? "h2" : "h1"
    expect(sources.peers[survivor] ?? 0).toBeGreaterThan(0)
    expect(await reader.blobs.store.hasBlob(ref)).toBe(true)
  })

  it("a holder serving corrupt chunks is detected and avoided; the read completes from an honest one", async () => {
    const prefix = freshPrefix()
    const [liar, honest, reader] = await Promise.all(["liar", "honest", "reader"].map((n) => startNode(url, n, { prefix, cacheBytes: 0 })))
    nodes.push(liar!, honest!, reader!)
    const bytes = seededBytes(40 << 20, 12)
    const ref = await liar!.blobs.put(bytes)
    await fetchBlob(honest!.blobs, ref)
    for (const file of await chunkFiles(liar!.dir)) {
      const content = await readFile(file)
      content[content.length >> 1]! ^= 0x55
      await writeFile(file, content)
    }
    await until(() => reader!.blobs.mesh!.folds.holdersOf(ref.hex).length === 2, "both holders known")
    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    expect(sameBytes(await reader!.blobs.get(ref, { sources }), bytes)).toBe(true)
    expect(reader!.blobs.mesh!.receiver.stats().integrityFailures).toBeGreaterThan(0)
  })

  it("a holder claiming a chunk larger than 16 MiB is cut off; the read completes from an honest one", async () => {
    const prefix = freshPrefix()
    const [liar, honest, reader] = await Promise.all(["liar", "honest", "reader"].map((n) => startNode(url, n, { prefix, cacheBytes: 0 })))
    nodes.push(liar!, honest!, reader!)
    const bytes = seededBytes((1 << 20) - 1, 13)
    const ref = await liar!.blobs.put(bytes)
    expect(ref.kind).toBe("chunk")
    // the liar's only chunk file now holds 17 MiB
    const [file] = await chunkFiles(liar!.dir)
    await writeFile(file!, seededBytes(17 << 20, 1))
    await until(() => reader!.blobs.mesh!.folds.holdersOf(ref.hex).length === 1, "the liar is known")
    // with only the liar, the read fails with a typed error after cutting it off
    let code: string | undefined
    await reader!.blobs.get(ref).catch((e) => (code = e.code))
    expect(code).toBe("NO_HOLDER")
    const cutOff = reader!.blobs.mesh!.holderFailures
    expect((cutOff.TOO_LARGE ?? 0) + (cutOff.PROTOCOL ?? 0)).toBeGreaterThan(0)
    // an honest holder of the same bytes appears (same content, same ref): the read completes from it
    expect((await honest!.blobs.put(bytes)).equals(ref)).toBe(true)
    await until(() => reader!.blobs.mesh!.folds.holdersOf(ref.hex).length === 2, "both holders known")
    const sources: ReadSources = { cache: 0, disk: 0, peers: {} }
    expect(sameBytes(await reader!.blobs.get(ref, { sources }), bytes)).toBe(true)
    expect(sources.peers).toEqual({ honest: bytes.length })
  })
})
