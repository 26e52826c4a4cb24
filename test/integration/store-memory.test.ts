import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { spawnTs } from "../support/child.ts"
import { tempDir } from "../support/temp.ts"

interface Report {
  ref: string
  maxRssMiB: number
  readBytes: number
}

async function putGet(dir: string, size: number): Promise<Report> {
  const child = spawnTs("child-store.ts", ["putget", dir, String(size), "5"])
  const line = await child.line((l) => l.startsWith("{"), 240_000)
  await child.exited
  return JSON.parse(line) as Report
}

describe("memory of put and get", () => {
  let tmp: { path: string; remove(): Promise<void> }
  beforeAll(async () => (tmp = await tempDir("df-mem-")))
  afterAll(async () => tmp.remove())

  it("stays flat: a 2 GiB put+read peaks within one max chunk (16 MiB) + slack of a 256 MiB one", async () => {
    const small = await putGet(join(tmp.path, "a"), 256 << 20)
    const big = await putGet(join(tmp.path, "b"), 2 * 1024 ** 3)
    expect(small.readBytes).toBe(256 << 20)
    expect(big.readBytes).toBe(2 * 1024 ** 3)
    console.log(`peak RSS: 256 MiB blob ${small.maxRssMiB.toFixed(0)} MiB, 2 GiB blob ${big.maxRssMiB.toFixed(0)} MiB`)
    // about one chunk plus a constant, generously bounded: the 256 MiB figure itself varies
    // by ~50 MiB from run to run (allocator timing), a blob held in memory would add GiBs
    expect(big.maxRssMiB).toBeLessThan(small.maxRssMiB + 96)
    expect(big.maxRssMiB).toBeLessThan(400)
  }, 300_000)
})
