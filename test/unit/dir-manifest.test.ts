import { describe, expect, it } from "vitest"
import { BlobRef } from "../../storage/format/blob-ref.ts"
import { DIR_MAGIC, decodeDirManifest, encodeDirManifest } from "../../storage/format/dir-manifest.ts"
import { codeOfSync } from "../support/expect.ts"

const fileRef = BlobRef.of("chunk", 3, new Uint8Array(32).fill(7))

describe("directory manifest codec", () => {
  it("keeps only permission bits, so a mode with file-type bits encodes like its permissions", () => {
    const plain = encodeDirManifest({ entries: [{ name: "a", kind: "file", mode: 0o644, ref: fileRef }] })
    const typed = encodeDirManifest({ entries: [{ name: "a", kind: "file", mode: 0o100644, ref: fileRef }] })
    expect(Buffer.from(typed).equals(Buffer.from(plain))).toBe(true)
    expect(decodeDirManifest(plain).entries[0]!.mode).toBe(0o644)
  })

  it("rejects mode bits outside 0o7777 with BAD_MANIFEST (one tree, one encoding)", () => {
    const bytes = encodeDirManifest({ entries: [{ name: "a", kind: "file", mode: 0o7777, ref: fileRef }] })
    expect(decodeDirManifest(bytes).entries[0]!.mode).toBe(0o7777)
    const modeAt = DIR_MAGIC.length + 4 + 1
    for (const bad of [0o10000, 0o100644, 0xffff]) {
      const forged = bytes.slice()
      new DataView(forged.buffer).setUint16(modeAt, bad)
      expect(codeOfSync(() => decodeDirManifest(forged))).toBe("BAD_MANIFEST")
    }
  })
})
