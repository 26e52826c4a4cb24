import { describe, expect, it } from "vitest"
import { CHUNK_MAX_BYTES } from "../../storage/format/constants.ts"
import { decodeManifest, encodeManifest, MANIFEST_MAGIC } from "../../storage/format/manifest.ts"
import { codeOfSync } from "../support/expect.ts"

const entry = (fill: number, length: number) => ({ hash: new Uint8Array(32).fill(fill), length })
const sample = { size: 3000, entries: [entry(1, 1000), entry(2, 2000)] }

describe("manifest codec", () => {
  it("round-trips and is canonical (one encoding per manifest)", () => {
    const bytes = encodeManifest(sample)
    const back = decodeManifest(bytes, 3000)
    expect(back.size).toBe(3000)
    expect(back.entries.map((e) => e.length)).toEqual([1000, 2000])
    expect(Buffer.from(encodeManifest(back)).equals(Buffer.from(bytes))).toBe(true)
  })

  it("starts with a magic that separates it from raw chunks", () => {
    expect(Buffer.from(encodeManifest(sample).subarray(0, MANIFEST_MAGIC.length)).toString("latin1")).toBe("DFMANI\x01\n")
  })

  it("rejects a truncated manifest with BAD_MANIFEST", () => {
    const bytes = encodeManifest(sample)
    expect(codeOfSync(() => decodeManifest(bytes.subarray(0, bytes.length - 1)))).toBe("BAD_MANIFEST")
    expect(codeOfSync(() => decodeManifest(bytes.subarray(0, 5)))).toBe("BAD_MANIFEST")
  })

  it("rejects an oversized manifest (trailing bytes, absurd count) with BAD_MANIFEST", () => {
    const bytes = encodeManifest(sample)
    const longer = new Uint8Array(bytes.length + 36)
    longer.set(bytes)
    expect(codeOfSync(() => decodeManifest(longer))).toBe("BAD_MANIFEST")
    const absurd = bytes.slice()
    new DataView(absurd.buffer).setUint32(16, 0xffffffff)
    expect(codeOfSync(() => decodeManifest(absurd))).toBe("BAD_MANIFEST")
  })

  it("rejects lying sizes: sum mismatch, chunk over the max, zero-length chunk, ref size mismatch", () => {
    expect(codeOfSync(() => decodeManifest(encodeManifest({ size: 2999, entries: sample.entries })))).toBe("BAD_MANIFEST")
    const huge = CHUNK_MAX_BYTES + 1
    expect(codeOfSync(() => decodeManifest(encodeManifest({ size: huge + 1, entries: [entry(1, huge), entry(2, 1)] })))).toBe("BAD_MANIFEST")
    expect(codeOfSync(() => decodeManifest(encodeManifest({ size: 5, entries: [entry(1, 0), entry(2, 5)] })))).toBe("BAD_MANIFEST")
    expect(codeOfSync(() => decodeManifest(encodeManifest(sample), 3001))).toBe("BAD_MANIFEST")
  })

  it("rejects a one-entry manifest (a one-chunk blob is addressed as the chunk)", () => {
    expect(codeOfSync(() => decodeManifest(encodeManifest({ size: 10, entries: [entry(1, 10)] })))).toBe("BAD_MANIFEST")
  })
})
