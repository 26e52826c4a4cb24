import { describe, expect, it } from "vitest"
import { BlobRef, REF_BYTES } from "../../storage/format/blob-ref.ts"
import { BadRefError } from "../../storage/format/errors.ts"

const HEX = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

describe("BlobRef", () => {
  it("round-trips through the string, binary and JSON forms", () => {
    const ref = BlobRef.parse(`df1-manifest-1048577-${HEX}`)
    expect(ref.kind).toBe("manifest")
    expect(ref.size).toBe(1048577)
    expect(ref.hex).toBe(HEX)
    expect(BlobRef.parse(ref.toString()).equals(ref)).toBe(true)
    expect(ref.toBytes().length).toBe(REF_BYTES)
    expect(BlobRef.fromBytes(ref.toBytes()).equals(ref)).toBe(true)
    const event = JSON.parse(JSON.stringify({ jobId: "j1", artifact: ref }))
    expect(BlobRef.parse(event.artifact).equals(ref)).toBe(true)
  })

  it("pins the binary layout (known answer)", () => {
    const ref = BlobRef.parse(`df1-dir-258-${HEX}`)
    expect(Buffer.from(ref.toBytes()).toString("hex")).toBe(`0102${"0000000000000102"}${HEX}`)
  })

  it.each([
    ["empty", ""],
    ["upper-case hex", `df1-chunk-5-${HEX.toUpperCase()}`],
    ["short hash", `df1-chunk-5-${HEX.slice(2)}`],
    ["unknown kind", `df1-blob-5-${HEX}`],
    ["leading zero size", `df1-chunk-05-${HEX}`],
    ["negative size", `df1-chunk--5-${HEX}`],
    ["wrong version", `df2-chunk-5-${HEX}`],
    ["trailing junk", `df1-chunk-5-${HEX}x`],
    ["whitespace", ` df1-chunk-5-${HEX}`],
    ["size beyond 2^53", `df1-chunk-9999999999999999-${HEX}`],
    ["a path", `../../etc/passwd`],
  ])("rejects a malformed ref (%s) with BAD_REF", (_, text) => {
    expect(() => BlobRef.parse(text)).toThrow(BadRefError)
    try {
      BlobRef.parse(text)
    } catch (e) {
      expect((e as BadRefError).code).toBe("BAD_REF")
    }
  })

  it("rejects non-strings and bad binary forms with BAD_REF", () => {
    expect(() => BlobRef.parse(42)).toThrow(BadRefError)
    expect(() => BlobRef.fromBytes(new Uint8Array(41))).toThrow(BadRefError)
    const bad = BlobRef.parse(`df1-chunk-5-${HEX}`).toBytes()
    bad[1] = 9
    expect(() => BlobRef.fromBytes(bad)).toThrow(BadRefError)
  })
})
