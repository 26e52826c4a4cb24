import fc from "fast-check"
import { expect, it } from "vitest"
import { decodeBatchReply, encodeBatchReply } from "../../transfer/batch.ts"
import { batchReply } from "../fuzz/arbitraries.ts"
import { describeTargets, fuzzParams } from "../fuzz/suite.ts"
import { batchReplyTarget, batchRequestTarget, controlTarget, holderFrameTarget } from "../fuzz/targets.ts"
import { codeOfSync } from "../support/expect.ts"

describeTargets("transfer wire", [holderFrameTarget, controlTarget, batchRequestTarget, batchReplyTarget])

it("a batch reply with another count than the request asked for is a PROTOCOL error", () => {
  fc.assert(
    fc.property(batchReply, fc.integer({ min: 1, max: 1024 }), (entries, off) => {
      const bytes = encodeBatchReply(entries)
      expect(decodeBatchReply(bytes, entries.length)).toHaveLength(entries.length)
      expect(codeOfSync(() => decodeBatchReply(bytes, (entries.length + off) % 1025))).toBe("PROTOCOL")
    }),
    fuzzParams(),
  )
})
