import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { bytesReader, type RangeReader } from "../../storage/chunk-store.ts"
import { FileChunkStore } from "../../storage/file-chunk-store.ts"
import { seededBytes } from "../support/bytes.ts"
import { tempDir } from "../support/temp.ts"

const HEX = "ab".repeat(32)

/** Views of `sizes` laid over one buffer, the way a holder lays frames' payload slots. */
function targets(sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const n of sizes) out.push(new Uint8Array(n).fill(0xee))
  return out
}
const concat = (parts: Uint8Array[]) => Buffer.concat(parts)

describe("RangeReader.readInto (scatter reads)", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let store: FileChunkStore
  const bytes = seededBytes(100_003, 9)
  beforeEach(async () => {
    dir = await tempDir()
    store = await FileChunkStore.open(dir.path)
    await store.write(HEX, bytes)
  })
  afterEach(async () => {
    await store.close()
    await dir.remove()
  })

  const readers = async (): Promise<Array<[string, RangeReader]>> => [
    ["file", (await store.openRange(HEX))!],
    ["memory", bytesReader(bytes)],
  ]

  it("fills the targets in order with the bytes from the offset", async () => {
    for (const [kind, r] of await readers()) {
      const t = targets([8102, 8102, 500])
      expect(await r.readInto(1234, t), kind).toBe(16_704)
      expect(Buffer.compare(concat(t), bytes.subarray(1234, 1234 + 16_704)), kind).toBe(0)
      await r.close()
    }
  })

  it("stops at the end of the chunk and reports the bytes read", async () => {
    for (const [kind, r] of await readers()) {
      const t = targets([60_000, 60_000])
      expect(await r.readInto(30_000, t), kind).toBe(70_003)
      expect(Buffer.compare(concat(t).subarray(0, 70_003), bytes.subarray(30_000)), kind).toBe(0)
      expect(await r.readInto(bytes.length, targets([10])), kind).toBe(0)
      await r.close()
    }
  })
})
