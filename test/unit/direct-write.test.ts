import { execFileSync } from "node:child_process"
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { AlignedStaging, DIRECT_ALIGN } from "../../storage/direct-write.ts"
import { FileChunkStore } from "../../storage/file-chunk-store.ts"
import { seededBytes } from "../support/bytes.ts"
import { tempDir } from "../support/temp.ts"

const hexOf = (i: number) => i.toString(16).padStart(2, "0").repeat(32)
const chunkPath = (root: string, hex: string) => join(root, "chunks", hex.slice(0, 2), hex)

/** Bytes of the file resident in the page cache (util-linux fincore). */
const cachedBytes = (path: string) => Number(execFileSync("fincore", ["--bytes", "--noheadings", "--output", "RES", path]).toString().trim())

describe("chunk writes around the page cache", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let store: FileChunkStore
  beforeEach(async () => {
    dir = await tempDir()
    store = await FileChunkStore.open(dir.path)
  })
  afterEach(async () => {
    await store.close()
    await dir.remove()
  })

  it("stores exactly the bytes at lengths on and off the block and slice boundaries", async () => {
    const sizes = [256 * 1024, 256 * 1024 + 1, (1 << 20) - 1, 1 << 20, (1 << 20) + DIRECT_ALIGN + 7, 3 * (1 << 20) + 17]
    for (const [i, size] of sizes.entries()) {
      const bytes = seededBytes(size, 100 + i)
      expect(await store.write(hexOf(i), bytes, { bypassPageCache: true })).toBe(true)
      const back = await readFile(chunkPath(dir.path, hexOf(i)))
      expect(back.length, `size ${size}`).toBe(size)
      expect(Buffer.compare(back, bytes), `size ${size}`).toBe(0)
    }
    expect(await readdir(join(dir.path, "tmp"))).toEqual([])
  })

  it("leaves a bypassing write out of the page cache, unlike a buffered one", async () => {
    const bytes = seededBytes(2 << 20, 7)
    await store.write(hexOf(1), bytes, { bypassPageCache: true })
    await store.write(hexOf(2), bytes)
    expect(cachedBytes(chunkPath(dir.path, hexOf(1)))).toBeLessThan(DIRECT_ALIGN * 2)
    expect(cachedBytes(chunkPath(dir.path, hexOf(2)))).toBe(2 << 20)
  })

  it("completes more concurrent writes than there are staging slices", async () => {
    const all = Array.from({ length: 9 }, (_, i) => seededBytes(600_000 + i * 4099, 300 + i))
    await Promise.all(all.map((b, i) => store.write(hexOf(i + 10), b, { bypassPageCache: true })))
    for (const [i, b] of all.entries()) expect(Buffer.compare(await readFile(chunkPath(dir.path, hexOf(i + 10))), b)).toBe(0)
  })

  it("lends each staging slice to one writer at a time, in turn", async () => {
    const staging = new AlignedStaging(DIRECT_ALIGN, 2)
    const a = await staging.acquire()
    const b = await staging.acquire()
    expect(a.buffer).toBe(b.buffer)
    expect(a.byteOffset % DIRECT_ALIGN).toBe(0)
    expect(b.byteOffset % DIRECT_ALIGN).toBe(0)
    let third: Uint8Array | undefined
    const waiting = staging.acquire().then((s) => (third = s))
    await Promise.resolve()
    expect(third).toBeUndefined()
    staging.release(a)
    await waiting
    expect(third).toBe(a)
  })
})
