import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ProtocolError, TimeoutError } from "../../storage/format/errors.ts"
import { decodeHolderFrame } from "../../transfer/frames.ts"
import { checkBytes, deepEqual } from "../fuzz/check.ts"
import { applyMutations, mutateJson } from "../fuzz/mutate.ts"
import { type AnyTarget, holderFrameTarget } from "../fuzz/targets.ts"

/** The fuzz properties must be able to fail: planted decoder bugs are caught, and the report names the seed that replays them. */

const broken = (decode: AnyTarget["decode"]): AnyTarget => ({ ...holderFrameTarget, name: "planted", decode })
const runOn = (t: AnyTarget, seed: number) =>
  fc.check(
    fc.property(t.inputs, (b) => {
      checkBytes(t, b)
    }),
    { seed, numRuns: 500 },
  )

describe("the fuzz harness", () => {
  it("catches a decoder that accepts trailing bytes after a HEAD, and its report names seed and path", () => {
    const lax = broken((b) => (b[1] === 0x02 && b.length > 6 ? decodeHolderFrame(b.subarray(0, 6)) : decodeHolderFrame(b)))
    const details = runOn(lax, 1234)
    expect(details.failed).toBe(true)
    expect(fc.defaultReportMessage(details)).toMatch(/seed: 1234, path: "[\d:]+"/)
  })

  it("catches an untyped exception and a code the decoder must not use", () => {
    expect(runOn(broken(() => { throw new RangeError("offset is outside the bounds of the DataView") }), 1).failed).toBe(true)
    expect(runOn(broken(() => { throw new TimeoutError("no") }), 1).failed).toBe(true)
    expect(runOn(broken(() => { throw new ProtocolError("fine") }), 1).failed).toBe(false)
  })

  it("mutations change copies only; field writes are big-endian", () => {
    const input = new Uint8Array([1, 2, 3, 4, 5])
    expect([...applyMutations(input, [{ op: "field", at: 1, width: 2, value: 0xabcdn }])]).toEqual([1, 0xab, 0xcd, 4, 5])
    expect([...applyMutations(input, [{ op: "truncate", at: 2 }])]).toEqual([1, 2])
    expect([...input]).toEqual([1, 2, 3, 4, 5])
  })

  it("JSON mutations splice raw text a JSON encoder never writes", () => {
    expect(mutateJson({ seq: 1 }, [{ op: "replace", path: 1, raw: "1e400" }])).toBe('{"seq":1e400}')
    expect(mutateJson({ a: {} }, [{ op: "extra", path: 1, key: "__proto__", value: 1 }])).toBe('{"a":{"__proto__":1}}')
  })

  it("deepEqual tells NaN, Infinity and null apart, and bytes by content", () => {
    expect(deepEqual({ a: NaN }, { a: NaN })).toBe(false)
    expect(deepEqual([Infinity], [null])).toBe(false)
    expect(deepEqual(new Uint8Array([1]), new Uint8Array([1]))).toBe(true)
    expect(deepEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false)
  })
})
