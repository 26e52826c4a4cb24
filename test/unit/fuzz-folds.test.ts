import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { deepEqual } from "../fuzz/check.ts"
import { describeTargets, fuzzParams } from "../fuzz/suite.ts"
import {
  type AnyTarget,
  envelopeTarget,
  heartbeatTarget,
  heatDeltaTarget,
  heatPageTarget,
  holdersDeltaTarget,
  holdersPageTarget,
  nodesPageTarget,
  pageHeaderTarget,
  pageTarget,
  syncRequestTarget,
} from "../fuzz/targets.ts"

describeTargets("fold traffic", [
  envelopeTarget,
  syncRequestTarget,
  pageHeaderTarget,
  pageTarget,
  holdersPageTarget,
  heatPageTarget,
  nodesPageTarget,
  holdersDeltaTarget,
  heatDeltaTarget,
  heartbeatTarget,
])

describe("fold JSON drops unknown fields, always", () => {
  const known: Array<[AnyTarget, readonly string[]]> = [
    [envelopeTarget, ["origin", "epoch", "seq", "data"]],
    [syncRequestTarget, ["fold", "page", "id"]],
    [pageHeaderTarget, ["fold", "origin", "epoch", "seq", "id", "page", "pages", "error"]],
    [holdersDeltaTarget, ["add", "remove", "kind"]],
    [heatDeltaTarget, ["reads"]],
    [heartbeatTarget, ["zone", "intervalMs", "watermarks"]],
  ]
  const te = new TextEncoder()
  for (const [t, keys] of known) {
    it(`${t.name}: a message with extra fields decodes as the message without them`, () => {
      const extra = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("__proto__", "constructor", "toString")).filter((k) => !keys.includes(k))
      fc.assert(
        fc.property(t.valid, extra, fc.jsonValue({ maxDepth: 1 }), (v, key, value) => {
          const plain = JSON.parse(JSON.stringify(v)) as Record<string, unknown>
          const withExtra = JSON.parse(JSON.stringify(v)) as Record<string, unknown>
          Object.defineProperty(withExtra, key, { value, enumerable: true, writable: true, configurable: true })
          const a = t.decode(te.encode(JSON.stringify(withExtra)))
          expect(a).toBeDefined()
          expect(deepEqual(t.view(a), t.view(t.decode(te.encode(JSON.stringify(plain)))))).toBe(true)
        }),
        fuzzParams(),
      )
    })
  }
})
