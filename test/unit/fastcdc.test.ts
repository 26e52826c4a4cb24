import { describe, expect, it } from "vitest"
import { CHUNK_AVG_BYTES, CHUNK_MAX_BYTES, CHUNK_MIN_BYTES } from "../../storage/format/constants.ts"
import { chunkLengths, FastCdc } from "../../storage/format/fastcdc.ts"
import { GEAR } from "../../storage/format/gear.ts"
import { loadHashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { randomSplits, seededBytes } from "../support/bytes.ts"

const SMALL = { min: 1024, avg: 4096, max: 16384 }

describe("FastCDC-2020 (NC2)", () => {
  it("pins the gear table (known answer: BLAKE3 of its little-endian bytes)", async () => {
    const noble = await loadHashBackend("noble")
    const bytes = new Uint8Array(GEAR.buffer.slice(0))
    expect(toHex(noble.hash(bytes))).toBe(GEAR_TABLE_BLAKE3)
  })

  it("pins the cut points of 64 MiB of seeded bytes at the protocol sizes", () => {
    const cuts = chunkLengths(seededBytes(64 << 20, 7))
    expect(cuts).toEqual(KNOWN_CUTS_64MIB_SEED7)
  })

  it("respects min, max and the total at protocol sizes", () => {
    const bytes = seededBytes(48 << 20, 3)
    const cuts = chunkLengths(bytes)
    expect(cuts.reduce((a, b) => a + b, 0)).toBe(bytes.length)
    for (const c of cuts.slice(0, -1)) {
      expect(c).toBeGreaterThanOrEqual(CHUNK_MIN_BYTES)
      expect(c).toBeLessThanOrEqual(CHUNK_MAX_BYTES)
    }
    const mean = bytes.length / cuts.length
    expect(mean).toBeGreaterThan(CHUNK_AVG_BYTES / 2)
    expect(mean).toBeLessThan(CHUNK_AVG_BYTES * 2)
  })

  it("forces a cut at max on input that never matches (zeros)", () => {
    const cuts = chunkLengths(new Uint8Array(CHUNK_MAX_BYTES * 2 + 5))
    expect(cuts).toEqual([CHUNK_MAX_BYTES, CHUNK_MAX_BYTES, 5])
  })

  it("gives the same cuts however the input is split", () => {
    const bytes = seededBytes(600_000, 11)
    const whole = chunkLengths(bytes, SMALL)
    for (const [seed, maxPiece] of [[1, 1], [2, 7], [3, 5000], [4, 70_000]] as const) {
      const input = maxPiece === 1 ? bytes.subarray(0, 40_000) : bytes
      const expected = maxPiece === 1 ? chunkLengths(input, SMALL) : whole
      const cdc = new FastCdc(SMALL)
      const cuts: number[] = []
      for (const piece of randomSplits(input, seed, maxPiece)) cuts.push(...cdc.update(piece))
      const tail = cdc.finish()
      if (tail > 0) cuts.push(tail)
      expect(cuts).toEqual(expected)
    }
  })

  it("resynchronises after a 100-byte insertion: at most 2 chunks differ", () => {
    const a = seededBytes(2_000_000, 5)
    const mid = 1_000_000
    const b = new Uint8Array(a.length + 100)
    b.set(a.subarray(0, mid))
    b.set(seededBytes(100, 99), mid)
    b.set(a.subarray(mid), mid + 100)
    const chunksOf = (bytes: Uint8Array) => {
      let off = 0
      return chunkLengths(bytes, SMALL).map((len) => toHex(bytes.subarray(off, (off += len))))
    }
    const before = new Set(chunksOf(a))
    const fresh = chunksOf(b).filter((c) => !before.has(c))
    expect(fresh.length).toBeGreaterThan(0)
    expect(fresh.length).toBeLessThanOrEqual(2)
  })

  it("rejects inconsistent sizes", () => {
    expect(() => new FastCdc({ min: 10, avg: 5, max: 20 })).toThrow(RangeError)
  })
})

const GEAR_TABLE_BLAKE3 = "803cb269a52a3011cc0edc384686276ceed4e72279669d0fcd27a0c22ab6796c"
const KNOWN_CUTS_64MIB_SEED7 = [
  4878821, 6951122, 2140827, 5216331, 4330423, 5425424, 5607891, 4480698, 4703870, 4671573, 6283590, 4943097,
  6678499, 796698,
]
