import { execFileSync } from "node:child_process"
import { constants } from "node:fs"
import { open, readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { loadHashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { seededBytes } from "../support/bytes.ts"
import { tempDir } from "../support/temp.ts"

/**
 * Chunk writes where page-aligned memory or direct I/O cannot be had: every chunk is still
 * stored exactly, through the page cache. Each test imports the modules afresh: direct-write.ts
 * remembers a refused WebAssembly.Memory for the rest of the process.
 */
type DirectWrite = typeof import("../../storage/direct-write.ts")
type FileStore = typeof import("../../storage/file-chunk-store.ts")

const fresh = async (): Promise<{ dw: DirectWrite; fcs: FileStore }> => {
  vi.resetModules()
  return { dw: await import("../../storage/direct-write.ts"), fcs: await import("../../storage/file-chunk-store.ts") }
}

/** Bytes of the file resident in the page cache (util-linux fincore), in whole pages. */
const cachedBytes = (path: string) => Number(execFileSync("fincore", ["--bytes", "--noheadings", "--output", "RES", path]).toString().trim())
const pages = (n: number) => Math.ceil(n / 4096) * 4096

/** Sizes on and off block and slice boundaries, all above the direct-write minimum (256 KiB). */
const SIZES = [256 * 1024, (1 << 20) + 4103, (4 << 20) + 1, (9 << 20) + 17]

describe("chunk writes without page-aligned memory or direct I/O", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  beforeEach(async () => {
    dir = await tempDir()
  })
  afterEach(async () => {
    vi.unstubAllGlobals()
    await dir.remove()
  })

  /**
   * Writes each size as a fetched chunk (asking to bypass the page cache) under its real
   * BLAKE3 name, reads it back through the store and checks the hash; returns the files.
   */
  async function writeVerified(fcs: FileStore, options: Parameters<FileStore["FileChunkStore"]["open"]>[2] = {}, from: (n: number) => Uint8Array = (n) => new Uint8Array(n)) {
    const hasher = await loadHashBackend("native")
    const store = await fcs.FileChunkStore.open(dir.path, "flush", options)
    const paths: string[] = []
    try {
      for (const [i, size] of SIZES.entries()) {
        const bytes = from(size)
        bytes.set(seededBytes(size, 60 + i))
        const hex = toHex(hasher.hash(bytes))
        expect(await store.write(hex, bytes, { bypassPageCache: true })).toBe(true)
        const back = await store.read(hex)
        expect(back?.length, `size ${size}`).toBe(size)
        expect(toHex(hasher.hash(back!)), `size ${size}`).toBe(hex)
        paths.push(join(dir.path, "chunks", hex.slice(0, 2), hex))
      }
      expect(await readdir(join(dir.path, "tmp"))).toEqual([])
    } finally {
      await store.close()
    }
    return paths
  }

  it("without WebAssembly (node --jitless): the modules import, alignedBytes gives ordinary zeroed memory, chunks are written buffered", async () => {
    vi.stubGlobal("WebAssembly", undefined)
    const { dw, fcs } = await fresh()
    const bytes = dw.alignedBytes(100_003)
    expect(bytes.length).toBe(100_003)
    expect(bytes.every((b) => b === 0)).toBe(true)
    expect(dw.isPageAligned(bytes)).toBe(false)
    expect(dw.alignedMemoryAvailable()).toBe(false)
    expect(new dw.AlignedStaging().aligned).toBe(false)
    // even chunks received into what the arena would be (alignedBytes) go through the page cache
    const paths = await writeVerified(fcs, {}, dw.alignedBytes)
    expect(fcs.chunkWriteStats).toEqual({ direct: 0, staged: 0, buffered: SIZES.length })
    for (const [i, p] of paths.entries()) expect(cachedBytes(p)).toBe(pages(SIZES[i]!))
  })

  it("when a WebAssembly.Memory cannot be allocated (RangeError, e.g. ulimit -v): ordinary memory, buffered writes, and the Memory is not tried again", async () => {
    let tries = 0
    vi.stubGlobal("WebAssembly", {
      Memory: class {
        constructor() {
          tries++
          throw new RangeError("WebAssembly.Memory(): could not allocate memory")
        }
      },
    })
    const { dw, fcs } = await fresh()
    expect(dw.alignedMemoryAvailable()).toBe(true) // not known until one is asked for
    const bytes = dw.alignedBytes(1 << 20)
    expect(bytes.length).toBe(1 << 20)
    expect(dw.isPageAligned(bytes)).toBe(false)
    expect(dw.alignedMemoryAvailable()).toBe(false)
    dw.alignedBytes(1 << 20)
    await writeVerified(fcs, {}, dw.alignedBytes)
    expect(tries).toBe(1)
    expect(fcs.chunkWriteStats).toEqual({ direct: 0, staged: 0, buffered: SIZES.length })
  })

  it("with direct writes turned off on the chunk store: buffered, even from page-aligned memory", async () => {
    const { dw, fcs } = await fresh()
    expect(dw.isPageAligned(dw.alignedBytes(1 << 20))).toBe(true)
    const paths = await writeVerified(fcs, { directWrites: false }, (n) => dw.alignedBytes(Math.ceil(n / (1 << 20)) * (1 << 20)).subarray(0, n))
    expect(fcs.chunkWriteStats).toEqual({ direct: 0, staged: 0, buffered: SIZES.length })
    for (const [i, p] of paths.entries()) expect(cachedBytes(p)).toBe(pages(SIZES[i]!))
  })

  it("with page-aligned memory: the same chunks go direct or staged (the fallback is not the only path taken)", async () => {
    const { dw, fcs } = await fresh()
    await writeVerified(fcs, {}, (n) => dw.alignedBytes(Math.ceil(n / (1 << 20)) * (1 << 20)).subarray(0, n))
    await dir.remove()
    dir = await tempDir()
    await writeVerified(fcs)
    expect(fcs.chunkWriteStats).toEqual({ direct: SIZES.length, staged: SIZES.length, buffered: 0 })
  })

  it("staging that is not page-aligned is never handed to the kernel: writeDirect refuses with EINVAL before writing", async () => {
    const { dw } = await fresh()
    const staging = new dw.AlignedStaging(dw.DIRECT_ALIGN, 2, (n) => new Uint8Array(n))
    expect(staging.aligned).toBe(false)
    const path = join(dir.path, "refused")
    const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | dw.O_DIRECT!, 0o644)
    try {
      await expect(dw.writeDirect(fh, seededBytes(300_000, 3), staging)).rejects.toMatchObject({ code: "EINVAL" })
      // bytes already page-aligned need no staging, so they still go direct
      const aligned = dw.alignedBytes(1 << 20).subarray(0, 300_000)
      aligned.set(seededBytes(300_000, 4))
      expect(await dw.writeDirect(fh, aligned, staging)).toBe("direct")
    } finally {
      await fh.close()
    }
    expect(Buffer.compare(await readFile(path), seededBytes(300_000, 4))).toBe(0)
  })
})
