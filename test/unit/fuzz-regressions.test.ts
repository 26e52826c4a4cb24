import { describe, expect, it } from "vitest"
import { BlobRef } from "../../storage/format/blob-ref.ts"
import { decodeDirManifest, encodeDirManifest } from "../../storage/format/dir-manifest.ts"
import { BATCH_CHUNK_MAX_BYTES, BATCH_MAX_COUNT, encodeBatchReply, encodeBatchRequest } from "../../transfer/batch.ts"
import { decodeControl, decodeHolderFrame, encodeCancel, encodeCredit, encodeErr } from "../../transfer/frames.ts"
import { HeatDelta, HeatEntry } from "../../folds/heat.ts"
import { Heartbeat } from "../../folds/nodes.ts"
import { decodeOr, Envelope, PageHeader, parseJson } from "../../folds/wire.ts"
import { codeOfSync } from "../support/expect.ts"

/**
 * What the fuzz targets (test/fuzz) found, pinned as plain cases: each failed before its fix.
 * A UTF-8 decoder strips a leading byte-order mark unless told not to, so two encodings
 * (with and without it) decoded to one value; JSON's 1e400 parses to Infinity, which
 * re-encodes as null; Schema.Number takes fractions and unsafe integers where a seq is meant.
 */

const ref = BlobRef.of("chunk", 3, new Uint8Array(32).fill(7))
const json = (text: string): unknown => parseJson(new TextEncoder().encode(text))
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b))

describe("byte-order marks are text, not markers", () => {
  it("a directory entry named with a leading BOM keeps it, so the manifest re-encodes to its own bytes", () => {
    const bytes = encodeDirManifest({ entries: [{ name: "\uFEFFa", kind: "file", mode: 0o644, ref }] })
    const back = decodeDirManifest(bytes)
    expect(back.entries[0]!.name).toBe("\uFEFFa")
    expect(same(encodeDirManifest(back), bytes)).toBe(true)
  })

  it("a symlink target with a leading BOM keeps it", () => {
    const bytes = encodeDirManifest({ entries: [{ name: "l", kind: "symlink", mode: 0o777, target: "\uFEFFt" }] })
    const entry = decodeDirManifest(bytes).entries[0]!
    expect(entry.kind === "symlink" && entry.target).toBe("\uFEFFt")
  })

  it("ERR messages, CREDIT and CANCEL subjects keep a leading BOM", () => {
    const err = decodeHolderFrame(encodeErr(3, "\uFEFF"))
    expect(err.type === "err" && err.message).toBe("\uFEFF")
    const credit = decodeControl(encodeCredit(10, "\uFEFFs"))
    expect(credit.type === "credit" && credit.subject).toBe("\uFEFFs")
    const cancel = decodeControl(encodeCancel("\uFEFF"))
    expect(cancel.type === "cancel" && cancel.subject).toBe("\uFEFF")
  })
})

describe("encoders write only what their decoders accept", () => {
  it("an empty symlink target is refused when encoding (UNSAFE_PATH), as when decoding", () => {
    expect(codeOfSync(() => encodeDirManifest({ entries: [{ name: "l", kind: "symlink", mode: 0o777, target: "" }] }))).toBe("UNSAFE_PATH")
  })

  it("CREDIT and CANCEL refuse an empty subject, which the decoder refuses too", () => {
    expect(() => encodeCredit(1, "")).toThrow(RangeError)
    expect(() => encodeCancel("")).toThrow(RangeError)
  })

  it("batch encoders refuse what would not fit their fields instead of writing a wrong count", () => {
    expect(() => encodeBatchRequest([new Uint8Array(31)])).toThrow(RangeError)
    expect(() => encodeBatchReply(Array.from({ length: BATCH_MAX_COUNT + 1 }, () => ({ status: 1 as const })))).toThrow(RangeError)
    expect(() => encodeBatchReply([{ status: 0, bytes: new Uint8Array(BATCH_CHUNK_MAX_BYTES + 1) }])).toThrow(RangeError)
  })
})

describe("fold JSON: numbers JSON cannot carry back, and fractions where ints are meant, are refused", () => {
  const env = (epoch: string, seq = "1") => json(`{"origin":"a","epoch":${epoch},"seq":${seq},"data":{}}`)

  it("an event envelope with an epoch that is infinite, fractional, negative or unsafe", () => {
    expect(decodeOr(Envelope, env("1700000000000000123"))).toBeUndefined()
    for (const bad of ["1e400", "0.5", "-1", "9007199254740993", "5e-324"]) expect(decodeOr(Envelope, env(bad))).toBeUndefined()
    expect(decodeOr(Envelope, env("1733300000000123"))?.epoch).toBe(1733300000000123)
  })

  it("a page header with such an epoch", () => {
    const header = (epoch: string) => json(`{"fold":"f","origin":"a","epoch":${epoch},"seq":0,"id":"i","page":0,"pages":1}`)
    for (const bad of ["1e400", "0.5", "-1", "11700000000000000"]) expect(decodeOr(PageHeader, header(bad))).toBeUndefined()
    expect(decodeOr(PageHeader, header("42"))).toBeDefined()
  })

  it("heat of 1e400 (Infinity) in an event or a snapshot entry", () => {
    const h = "0".repeat(64)
    expect(decodeOr(HeatEntry, json(`["${h}",1e400]`))).toBeUndefined()
    expect(decodeOr(HeatDelta, json(`{"reads":[["${h}",1e400]]}`))).toBeUndefined()
    expect(decodeOr(HeatEntry, json(`["${h}",0.25]`))).toEqual([h, 0.25])
  })

  it("a heartbeat with an infinite interval, or a watermark that is not a safe non-negative integer", () => {
    const hb = (interval: string, mark: string) => json(`{"intervalMs":${interval},"watermarks":{"holders":${mark}}}`)
    expect(decodeOr(Heartbeat, hb("1e400", "1"))).toBeUndefined()
    for (const bad of ["1e400", "0.5", "5e-324", "-1", "9007199254740993"]) expect(decodeOr(Heartbeat, hb("1000", bad))).toBeUndefined()
    expect(decodeOr(Heartbeat, hb("1000", "7"))).toEqual({ intervalMs: 1000, watermarks: { holders: 7 } })
  })
})
