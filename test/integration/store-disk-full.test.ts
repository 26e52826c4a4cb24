import { execFileSync } from "node:child_process"
import { mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Blobs } from "../../plugin/index.ts"
import { FileChunkStore } from "../../storage/file-chunk-store.ts"
import { seededBytes } from "../support/bytes.ts"

/** A real full disk: a 6 MiB tmpfs mounted for this test (CI runs as root). */
describe("a disk that fills", () => {
  let mnt: string
  beforeAll(async () => {
    mnt = await mkdtemp(join(tmpdir(), "df-full-"))
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt])
  })
  afterAll(async () => {
    execFileSync("umount", [mnt])
    await rm(mnt, { recursive: true, force: true })
  })

  it("fails the put with DISK_FULL, makes nothing visible, frees its chunks, and keeps serving", async () => {
    const blobs = await Blobs.open({ dir: join(mnt, "store"), cacheBytes: 0 })
    const small = seededBytes(512 << 10, 1)
    const kept = await blobs.put(small)
    let code: string | undefined
    await blobs.put(seededBytes(24 << 20, 2)).catch((e) => (code = e.code))
    expect(code).toBe("DISK_FULL")
    const listed: string[] = []
    for await (const s of blobs.list()) listed.push(s.ref.toString())
    expect(listed).toEqual([kept.toString()])
    expect(await readdir(join(mnt, "store", "tmp"))).toEqual([])
    // the failed put's chunks were removed: the space is back and the store still works
    expect(Buffer.from(await blobs.get(kept)).equals(small)).toBe(true)
    const again = await blobs.put(seededBytes(1 << 20, 3))
    expect((await blobs.stat(again)).size).toBe(1 << 20)
    await blobs.close()
  })

  it("a chunk fetched from a peer (written around the page cache) that does not fit: DISK_FULL, nothing left behind", async () => {
    const store = await FileChunkStore.open(join(mnt, "direct"))
    let code: string | undefined
    await store.write("ab".repeat(32), seededBytes(8 << 20, 4), { bypassPageCache: true }).catch((e) => (code = e.code))
    expect(code).toBe("DISK_FULL")
    expect(await store.has("ab".repeat(32))).toBe(false)
    expect(await readdir(join(mnt, "direct", "tmp"))).toEqual([])
    await store.close()
  })
})
