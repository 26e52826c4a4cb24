import fc from "fast-check"
import { expect, it } from "vitest"
import { BlobRef } from "../../storage/format/blob-ref.ts"
import { decodeManifest, encodeManifest } from "../../storage/format/manifest.ts"
import { manifest } from "../fuzz/arbitraries.ts"
import { describeTargets, fuzzParams } from "../fuzz/suite.ts"
import { blobRefBinary, blobRefString, dirManifestTarget, manifestTarget } from "../fuzz/targets.ts"
import { codeOfSync } from "../support/expect.ts"

describeTargets("storage formats", [blobRefString, blobRefBinary, manifestTarget, dirManifestTarget])

it("BlobRef.parse refuses any non-string with BAD_REF", () => {
  fc.assert(
    fc.property(
      fc.anything().filter((v) => typeof v !== "string"),
      (v) => {
        expect(codeOfSync(() => BlobRef.parse(v))).toBe("BAD_REF")
      },
    ),
    fuzzParams(),
  )
})

it("decodeManifest refuses a manifest whose size is not the ref's (BAD_MANIFEST)", () => {
  fc.assert(
    fc.property(manifest, fc.integer({ min: 1, max: 2 ** 40 }), (m, delta) => {
      const bytes = encodeManifest(m)
      expect(decodeManifest(bytes, m.size).size).toBe(m.size)
      expect(codeOfSync(() => decodeManifest(bytes, m.size + delta))).toBe("BAD_MANIFEST")
    }),
    fuzzParams(),
  )
})
