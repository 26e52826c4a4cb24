import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Blobs, BlobRef } from "../../plugin/index.ts"
import { seededStream } from "../support/bytes.ts"
import { spawnTs } from "../support/child.ts"
import { tempDir } from "../support/temp.ts"

const SIZE = 40 << 20
const RUNS = 24

describe("a put killed at random points (SIGKILL, child process)", () => {
  let tmp: { path: string; remove(): Promise<void> }
  beforeAll(async () => (tmp = await tempDir("df-crash-")))
  afterAll(async () => tmp.remove())

  it(`leaves no visible partial blob and a consistent index, over ${RUNS} runs`, async () => {
    const mem = await Blobs.open({ memory: true, cacheBytes: 0 })
    const expected: BlobRef[] = []
    for (let seed = 1; seed <= 3; seed++) expected.push(await mem.put(seededStream(SIZE, seed)))
    await mem.close()
    let completed = 0
    for (let run = 0; run < RUNS; run++) {
      const dir = join(tmp.path, "store") // one store across runs: damage would accumulate
      const seed = 1 + (run % 3)
      const child = spawnTs("child-store.ts", ["put", dir, String(SIZE), String(seed)])
      await child.line((l) => l === "ready")
      // kill anywhere from before the first chunk to after the commit
      await sleep(Math.floor(Math.random() * 250))
      child.proc.kill("SIGKILL")
      await child.exited
      if (child.lines.some((l) => l.startsWith("df1-"))) completed++

      const blobs = await Blobs.open({ dir, cacheBytes: 0 })
      // every visible blob is whole and verified, and is one of the expected ones
      for await (const s of blobs.list()) {
        expect(expected.some((r) => r.equals(s.ref))).toBe(true)
        let n = 0
        for await (const part of blobs.read(s.ref)) n += part.length
        expect(n).toBe(s.size)
      }
      // orphans from the killed put were swept: every chunk file is referenced
      const files: string[] = []
      for await (const hex of blobs.store.chunks.list()) files.push(hex)
      const counts = await blobs.store.index.refcounts(files)
      expect(counts.filter((c) => c === 0)).toEqual([])
      // the re-put succeeds and gives the expected ref
      const ref = await blobs.put(seededStream(SIZE, seed))
      expect(ref.equals(expected[seed - 1]!)).toBe(true)
      await blobs.delete(ref) // so the next run starts without this blob
      await blobs.close()
    }
    // the kills must have landed mid-put at least sometimes, else the test proves nothing
    expect(completed).toBeLessThan(RUNS)
  }, 300_000)
})
