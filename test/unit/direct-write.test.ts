import { execFileSync } from "node:child_process"
import { constants } from "node:fs"
import { open, readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { AlignedStaging, alignedBytes, DIRECT_ALIGN, DIRECT_SLICE_BYTES, O_DIRECT, writeDirect } from "../../storage/direct-write.ts"
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
    const sizes = [256 * 1024, 256 * 1024 + 1, (1 << 20) - 1, 1 << 20, (1 << 20) + DIRECT_ALIGN + 7, 3 * (1 << 20) + 17, 2 * DIRECT_SLICE_BYTES + 5]
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

  describe("from page-aligned buffers", () => {
    /** Staging that fails if asked: proves a write went straight from the caller's buffer. */
    const noStaging = { acquire: () => Promise.reject(new Error("staging used")), release() {} } as unknown as AlignedStaging

    it("writes an aligned buffer's bytes without staging them, and no padding lands in the file", async () => {
      for (const [i, size] of [DIRECT_ALIGN, 300_001, (4 << 20) + 3, DIRECT_SLICE_BYTES * 2 + DIRECT_ALIGN + 1].entries()) {
        const backing = alignedBytes(Math.ceil(size / (1 << 20)) * (1 << 20))
        backing.fill(0xff) // what lies past the content must not be written
        const bytes = backing.subarray(0, size)
        bytes.set(seededBytes(size, 40 + i))
        const path = join(dir.path, `aligned-${i}`)
        const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | O_DIRECT!, 0o644)
        try {
          await writeDirect(fh, bytes, noStaging)
        } finally {
          await fh.close()
        }
        const back = await readFile(path)
        expect(back.length, `size ${size}`).toBe(size)
        expect(Buffer.compare(back, seededBytes(size, 40 + i)), `size ${size}`).toBe(0)
      }
    })

    it("stages a view that does not start on a block of an aligned buffer", async () => {
      const backing = alignedBytes(1 << 20)
      const bytes = backing.subarray(100, 100 + 300_000)
      bytes.set(seededBytes(300_000, 9))
      const path = join(dir.path, "unaligned")
      const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | O_DIRECT!, 0o644)
      try {
        await expect(writeDirect(fh, bytes, noStaging)).rejects.toThrow()
        await writeDirect(fh, bytes, new AlignedStaging())
      } finally {
        await fh.close()
      }
      expect(Buffer.compare(await readFile(path), seededBytes(300_000, 9))).toBe(0)
    })
  })
})
