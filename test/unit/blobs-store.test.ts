import { Readable } from "node:stream"
import { readdir, readFile, stat, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { Blobs, BlobRef, type PutInput } from "../../plugin/index.ts"
import { CHUNK_AVG_BYTES, CHUNK_MAX_BYTES, CHUNK_MIN_BYTES } from "../../storage/format/constants.ts"
import { loadHashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { seededBytes } from "../support/bytes.ts"
import { tempDir } from "../support/temp.ts"
import { codeOf, sameBytes } from "../support/expect.ts"

const SIZES = [0, 1, CHUNK_MIN_BYTES - 1, CHUNK_MIN_BYTES, CHUNK_AVG_BYTES, CHUNK_MAX_BYTES, CHUNK_MAX_BYTES + 1, 3 * CHUNK_MAX_BYTES + 7]

async function* pieces(bytes: Uint8Array, size: number) {
  for (let o = 0; o < bytes.length; o += size) yield bytes.slice(o, o + size)
}

const inputKinds: Array<[string, (b: Uint8Array, dir: string) => Promise<PutInput | { file: string }>]> = [
  ["Uint8Array", async (b) => b],
  ["AsyncIterable", async (b) => pieces(b, 100_003)],
  ["Node Readable", async (b) => Readable.from(pieces(b, 65_536))],
  ["web ReadableStream", async (b) => Readable.toWeb(Readable.from(pieces(b, 77_777))) as unknown as ReadableStream<Uint8Array>],
  ["file path", async (b, dir) => {
    const file = join(dir, `in-${b.length}`)
    await writeFile(file, b)
    return { file }
  }],
]

describe.each([["durable", false], ["memory", true]] as const)("Blobs store (%s)", (_name, memory) => {
  let tmp: { path: string; remove(): Promise<void> }
  let blobs: Blobs
  beforeEach(async () => {
    tmp = await tempDir()
    blobs = await Blobs.open(memory ? { memory: true } : { dir: join(tmp.path, "store") })
  })
  afterEach(async () => {
    await blobs.close()
    await tmp.remove()
  })

  it("round-trips the interesting sizes through every input kind", async () => {
    for (const size of SIZES) {
      const bytes = seededBytes(size, size + 1)
      let expected: BlobRef | undefined
      for (const [kind, make] of inputKinds) {
        const input = await make(bytes, tmp.path)
        const ref = "file" in (input as object) ? await blobs.putFile((input as { file: string }).file) : await blobs.put(input as PutInput)
        expect(ref.size, `${kind} ${size}`).toBe(size)
        expected ??= ref
        expect(ref.equals(expected), `${kind} ${size} gives the same ref`).toBe(true)
        expect(sameBytes(await blobs.get(ref), bytes), `${kind} ${size} bytes`).toBe(true)
      }
    }
  })

  it("gives the same ref for the same bytes and does not grow", async () => {
    const bytes = seededBytes(9 << 20, 2)
    const a = await blobs.put(bytes)
    const bytesBefore = await blobs.store.chunks.bytes()
    const b = await blobs.put(pieces(bytes, 12345))
    expect(b.equals(a)).toBe(true)
    expect(await blobs.store.chunks.bytes()).toBe(bytesBefore)
    let count = 0
    for await (const _ of blobs.list()) count++
    expect(count).toBe(1)
  })

  it("addresses a one-chunk blob by BLAKE3 of its bytes (what b3sum prints)", async () => {
    const bytes = seededBytes(5000, 3)
    const ref = await blobs.put(bytes)
    const noble = await loadHashBackend("noble")
    expect(ref.kind).toBe("chunk")
    expect(ref.hex).toBe(toHex(noble.hash(bytes)))
  })

  it("stores at most 2 new chunks after 100 bytes are inserted in the middle of 64 MiB", async () => {
    const a = seededBytes(64 << 20, 21)
    await blobs.put(a)
    const chunksBefore = await countChunks(blobs)
    const b = new Uint8Array(a.length + 100)
    const mid = a.length / 2
    b.set(a.subarray(0, mid))
    b.set(seededBytes(100, 5), mid)
    b.set(a.subarray(mid), mid + 100)
    const ref = await blobs.put(b)
    expect(ref.kind).toBe("manifest")
    const added = (await countChunks(blobs)) - chunksBefore
    expect(added).toBeGreaterThanOrEqual(1)
    expect(added).toBeLessThanOrEqual(2)
  })

  it("lists by tag, stats, and deletes without touching chunks shared with another blob", async () => {
    const shared = seededBytes(20 << 20, 8)
    const longer = new Uint8Array(shared.length + (3 << 20))
    longer.set(shared)
    longer.set(seededBytes(3 << 20, 9), shared.length)
    const a = await blobs.put(shared, { tags: { version: "v3" } })
    const b = await blobs.put(longer, { tags: { version: "v4" } })
    const tagged: string[] = []
    for await (const s of blobs.list({ tag: "version=v3" })) tagged.push(s.ref.toString())
    expect(tagged).toEqual([a.toString()])
    const st = await blobs.stat(a)
    expect(st.size).toBe(shared.length)
    expect(st.tags).toEqual({ version: "v3" })
    expect(await blobs.delete(a)).toBe(true)
    expect(await codeOf(blobs.stat(a))).toBe("NOT_FOUND")
    expect(sameBytes(await blobs.get(b), longer)).toBe(true)
    expect(await blobs.delete(a)).toBe(false)
  })

  it("rejects malformed refs with BAD_REF and unknown ones with NOT_FOUND", async () => {
    expect(await codeOf(blobs.get("df1-chunk-1-xyz"))).toBe("BAD_REF")
    expect(await codeOf(blobs.stat("nonsense"))).toBe("BAD_REF")
    expect(await codeOf(blobs.get(`df1-chunk-3-${"ab".repeat(32)}`))).toBe("NOT_FOUND")
  })

  it("an aborted put leaves nothing visible and no chunk bytes behind", async () => {
    const ctrl = new AbortController()
    async function* slow() {
      for (let i = 0; i < 40; i++) {
        if (i === 20) ctrl.abort()
        yield seededBytes(1 << 20, 100 + i)
      }
    }
    expect(await codeOf(blobs.put(slow(), { signal: ctrl.signal }))).toBe("ABORTED")
    let count = 0
    for await (const _ of blobs.list()) count++
    expect(count).toBe(0)
    expect(await blobs.store.chunks.bytes()).toBe(0)
  })

  it("rejects every call after close with CLOSED; close is idempotent", async () => {
    const ref = await blobs.put(seededBytes(10, 1))
    await blobs.close()
    await blobs.close()
    await blobs[Symbol.asyncDispose]()
    expect(await codeOf(blobs.put(new Uint8Array(1)))).toBe("CLOSED")
    expect(await codeOf(blobs.get(ref))).toBe("CLOSED")
    expect(await codeOf(blobs.stat(ref))).toBe("CLOSED")
    expect(await codeOf(blobs.flush())).toBe("CLOSED")
    expect(await codeOf(() => blobs.list())).toBe("CLOSED")
  })

  it("getToFile writes atomically with progress, and leaves nothing on failure", async () => {
    const bytes = seededBytes(7 << 20, 12)
    const ref = await blobs.put(bytes)
    const out = join(tmp.path, "out.bin")
    const seen: number[] = []
    await blobs.getToFile(ref, out, { onProgress: (p) => seen.push(p.bytes) })
    expect(sameBytes(await readFile(out), bytes)).toBe(true)
    expect(seen.at(-1)).toBe(bytes.length)
    const missing = join(tmp.path, "missing.bin")
    expect(await codeOf(blobs.getToFile(`df1-chunk-3-${"cd".repeat(32)}`, missing))).toBe("NOT_FOUND")
    expect((await readdir(tmp.path)).filter((f) => f.startsWith("missing"))).toEqual([])
  })

  it("honours an already-aborted signal on every call with ABORTED", async () => {
    const signal = AbortSignal.abort()
    const ref = await blobs.put(new Uint8Array(3))
    expect(await codeOf(blobs.put(new Uint8Array(3), { signal }))).toBe("ABORTED")
    expect(await codeOf(blobs.get(ref, { signal }))).toBe("ABORTED")
    expect(await codeOf(blobs.stat(ref, { signal }))).toBe("ABORTED")
  })
})

async function countChunks(blobs: Blobs): Promise<number> {
  let n = 0
  for await (const _ of blobs.store.chunks.list()) n++
  return n
}

describe("Blobs store on disk", () => {
  let tmp: { path: string; remove(): Promise<void> }
  beforeEach(async () => (tmp = await tempDir()))
  afterEach(async () => tmp.remove())

  it("gives IntegrityError for a chunk corrupted on disk, never wrong bytes", async () => {
    const dir = join(tmp.path, "s")
    const bytes = seededBytes(6 << 20, 4)
    let blobs = await Blobs.open({ dir, cacheBytes: 0 })
    const ref = await blobs.put(bytes)
    await blobs.close()
    // the store keeps all 256 fan-out folders; take a chunk from one that has any
    const chunkFiles = await readdir(join(dir, "chunks"), { recursive: true, withFileTypes: true })
    const file = chunkFiles.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))[0]!
    const content = await readFile(file)
    content[content.length >> 1]! ^= 0xff
    await writeFile(file, content)
    blobs = await Blobs.open({ dir, cacheBytes: 0 })
    expect(await codeOf(blobs.get(ref))).toBe("INTEGRITY")
    // the corrupt file is dropped, so putting the bytes again heals the store
    await blobs.put(bytes)
    expect(sameBytes(await blobs.get(ref), bytes)).toBe(true)
    await blobs.close()
  })

  it("gives a typed error for a manifest damaged in the index", async () => {
    const dir = join(tmp.path, "s")
    const blobs = await Blobs.open({ dir })
    const ref = await blobs.put(seededBytes(20 << 20, 6))
    const manifest = (await blobs.store.index.getManifest(ref.hex))!
    await blobs.store.index.commit("00".repeat(32), { kind: "manifest", size: ref.size, tags: {}, created: 0, lastRead: 0, chunks: 2 }, manifest.subarray(0, manifest.length - 3), [])
    const forged = BlobRef.of("manifest", ref.size, new Uint8Array(32))
    expect(await codeOf(blobs.get(forged))).toBe("INTEGRITY")
    await blobs.close()
  })

  it("keeps blobs across reopen and survives flush", async () => {
    const dir = join(tmp.path, "s")
    const bytes = seededBytes(5 << 20, 44)
    let blobs = await Blobs.open({ dir, durability: "always" })
    const ref = await blobs.put(bytes, { tags: { a: "b" } })
    await blobs.flush()
    await blobs.close()
    blobs = await Blobs.open({ dir })
    expect(sameBytes(await blobs.get(ref), bytes)).toBe(true)
    expect((await blobs.stat(ref)).tags).toEqual({ a: "b" })
    await blobs.close()
    expect((await stat(join(dir, "index"))).isDirectory()).toBe(true)
  })
})
