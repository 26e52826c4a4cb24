import { describe, expect, it } from "vitest"
import { DATA_MAX_PAYLOAD, FRAME_MAX_BYTES } from "../../transfer/constants.ts"
import { encodeData } from "../../transfer/frames.ts"
import { isWireSubject, layoutWireSlab, WIRE_SUBJECT_MAX, wireSlabBytes } from "../../transfer/wire-slab.ts"

const utf8 = new TextEncoder()
const latin1 = new TextDecoder("latin1")

/** Parses `PUB <subject> <n>\r\n<n bytes>\r\n` records the way a NATS server reads them. */
function parseRecords(bytes: Uint8Array): Array<{ subject: string; payload: Uint8Array }> {
  const out: Array<{ subject: string; payload: Uint8Array }> = []
  let at = 0
  while (at < bytes.length) {
    const eol = bytes.indexOf(10, at)
    const line = latin1.decode(bytes.subarray(at, eol + 1))
    const m = /^PUB (\S+) (\d+)\r\n$/.exec(line)
    if (m === null) throw new Error(`bad PUB line at ${at}: ${JSON.stringify(line)}`)
    const n = Number(m[2])
    const payload = bytes.subarray(eol + 1, eol + 1 + n)
    if (bytes[eol + 1 + n] !== 13 || bytes[eol + 2 + n] !== 10) throw new Error(`no CRLF after the payload at ${eol + 1 + n}`)
    out.push({ subject: new TextDecoder().decode(utf8.encode(m[1]!)), payload })
    at = eol + 3 + n
  }
  return out
}

describe("wire slabs (PUB records of DATA frames)", () => {
  const subject = utf8.encode("dataforts.xfer.in.0123456789abcdef.1z")

  it("parse back, record by record, to the window's DATA frames on the transfer's subject", () => {
    const len = 3 * DATA_MAX_PAYLOAD + 5
    const src = new Uint8Array(len).map((_, i) => (i * 7) & 0xff)
    const start = 1_000_000
    const { slab, payloads, recordStarts } = layoutWireSlab(subject, start, len)
    expect(payloads.map((p) => p.length)).toEqual([DATA_MAX_PAYLOAD, DATA_MAX_PAYLOAD, DATA_MAX_PAYLOAD, 5])
    for (let i = 0, at = 0; i < payloads.length; at += payloads[i]!.length, i++) payloads[i]!.set(src.subarray(at, at + payloads[i]!.length))
    const records = parseRecords(slab.subarray(0, recordStarts[payloads.length]))
    expect(records).toHaveLength(4)
    for (const [i, r] of records.entries()) {
      expect(r.subject).toBe("dataforts.xfer.in.0123456789abcdef.1z")
      const expected = encodeData(start + i * DATA_MAX_PAYLOAD, src.subarray(i * DATA_MAX_PAYLOAD, Math.min(len, (i + 1) * DATA_MAX_PAYLOAD)))
      expect(Buffer.compare(r.payload, expected), `frame ${i}`).toBe(0)
    }
  })

  it("marks each record and frame: any run of records is a valid protocol slice, each frame view a whole DATA frame", () => {
    const len = 5 * DATA_MAX_PAYLOAD
    const { slab, recordStarts, frameStarts } = layoutWireSlab(subject, 0, len)
    expect(parseRecords(slab.subarray(recordStarts[1], recordStarts[4]))).toHaveLength(3)
    for (let i = 0; i < 5; i++) {
      const frame = slab.subarray(frameStarts[i], recordStarts[i + 1]! - 2)
      expect(frame.length).toBe(FRAME_MAX_BYTES)
      expect(Buffer.compare(frame.subarray(0, 6), encodeData(i * DATA_MAX_PAYLOAD, new Uint8Array(0)).subarray(0, 6))).toBe(0)
    }
  })

  it("fits a full window to a subject of the pooled maximum into a pooled slab, and takes a fresh one beyond", () => {
    const frames = 128
    const pooled = new Uint8Array(wireSlabBytes(frames, WIRE_SUBJECT_MAX))
    const longest = utf8.encode("s".repeat(WIRE_SUBJECT_MAX))
    expect(layoutWireSlab(longest, 0, frames * DATA_MAX_PAYLOAD, pooled).slab).toBe(pooled)
    const tooLong = utf8.encode("s".repeat(WIRE_SUBJECT_MAX + 1))
    const fresh = layoutWireSlab(tooLong, 0, frames * DATA_MAX_PAYLOAD, pooled)
    expect(fresh.slab).not.toBe(pooled)
    expect(parseRecords(fresh.slab.subarray(0, fresh.recordStarts[frames]))).toHaveLength(frames)
  })

  it("refuses subjects with spaces or control bytes (they would break the protocol stream)", () => {
    for (const bad of ["a b", "a\r\nPUB x 1", "", "tab\there", "del\x7f"]) {
      expect(isWireSubject(utf8.encode(bad)), JSON.stringify(bad)).toBe(false)
      expect(() => layoutWireSlab(utf8.encode(bad), 0, 10)).toThrow(RangeError)
    }
    expect(isWireSubject(utf8.encode("dataforts.xfer.in.ünïcode.1"))).toBe(true)
  })
})
