import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { fromHex, toHex } from "../../storage/format/hex.ts"
import { DATA_MAX_PAYLOAD, FRAME_MAX_BYTES } from "../../transfer/constants.ts"
import {
  ErrCode,
  decodeControl,
  decodeHolderFrame,
  encodeCancel,
  encodeCredit,
  encodeData,
  encodeDataFrom,
  encodeErr,
  encodeFin,
  encodeHead,
  encodeReq,
  errCodeOf,
  errorFromErr,
} from "../../transfer/frames.ts"
import { NotFoundError, ProtocolError, TooLargeError } from "../../storage/format/errors.ts"

interface Vector {
  name: string
  hex: string
  frame?: Record<string, unknown>
  control?: Record<string, unknown>
}
const ROOT = join(import.meta.dirname, "../..")
const vectors = JSON.parse(readFileSync(join(ROOT, "test/fixtures/transfer-vectors.json"), "utf8")) as Vector[]
const protocolDoc = readFileSync(join(ROOT, "docs/PROTOCOL.md"), "utf8")

/** Encodes a vector's described message with the codec. */
function encode(v: Vector): Uint8Array {
  const m = (v.frame ?? v.control)!
  const bytes = (k: string) => fromHex(m[k] as string)!
  switch (m.type) {
    case "data":
      return encodeData(m.offset as number, bytes("payload"))
    case "head":
      return encodeHead(m.length as number)
    case "fin":
      return encodeFin(m.length as number, bytes("hash"))
    case "err":
      return encodeErr(m.code as number, m.message as string)
    case "req":
      return encodeReq(bytes("hash"), m.offset as number, m.credit as number, m.maxLength as number)
    case "credit":
      return encodeCredit(m.credit as number, m.subject as string)
    case "cancel":
      return encodeCancel(m.subject as string)
  }
  throw new Error(`unknown vector type ${String(m.type)}`)
}

/** The decoded message with byte fields as hex, comparable to the vector's description. */
function decoded(v: Vector): Record<string, unknown> {
  const raw = fromHex(v.hex)!
  const m = v.frame ? decodeHolderFrame(raw) : decodeControl(raw)
  return Object.fromEntries(Object.entries(m).map(([k, x]) => [k, x instanceof Uint8Array ? toHex(x) : x]))
}

describe("transfer frame codec test vectors", () => {
  it.each(vectors.map((v) => [v.name, v] as const))("%s encodes to the documented bytes", (_name, v) => {
    expect(toHex(encode(v))).toBe(v.hex)
  })

  it.each(vectors.map((v) => [v.name, v] as const))("%s decodes back to its fields", (_name, v) => {
    expect(decoded(v)).toEqual(v.frame ?? v.control)
  })

  it.each(vectors.map((v) => [v.name, v] as const))("%s appears verbatim in docs/PROTOCOL.md", (_name, v) => {
    expect(protocolDoc).toContain(v.hex)
  })
})

describe("transfer frame codec", () => {
  it("a full DATA frame is exactly the 8108-byte frame limit", () => {
    const frame = encodeData(0, new Uint8Array(DATA_MAX_PAYLOAD))
    expect(frame.length).toBe(FRAME_MAX_BYTES)
    expect(() => encodeData(0, new Uint8Array(DATA_MAX_PAYLOAD + 1))).toThrow(RangeError)
  })

  it("encodeDataFrom produces the same bytes as encodeData", () => {
    const src = new Uint8Array(100).map((_, i) => i)
    expect(toHex(encodeDataFrom(0x01020304, src, 10, 30))).toBe(toHex(encodeData(0x01020304, src.subarray(10, 30))))
  })

  it("rejects an unknown version with PROTOCOL", () => {
    const bad = encodeHead(5)
    bad[0] = 2
    expect(() => decodeHolderFrame(bad)).toThrow(expect.objectContaining({ code: "PROTOCOL" }))
  })

  it.each([
    ["empty message", ""],
    ["unknown holder type", "0199"],
    ["short DATA header", "01010000"],
    ["HEAD with trailing byte", "01020000000500"],
    ["FIN without hash", "010300000005"],
    ["ERR without code", "0104"],
    ["ERR with invalid UTF-8", "010401ff"],
  ])("rejects a malformed holder frame (%s) with PROTOCOL", (_what, hex) => {
    expect(() => decodeHolderFrame(fromHex(hex)!)).toThrow(expect.objectContaining({ code: "PROTOCOL" }))
  })

  it("rejects a DATA frame over the frame limit with PROTOCOL", () => {
    const big = new Uint8Array(FRAME_MAX_BYTES + 1)
    big.set([1, 1])
    expect(() => decodeHolderFrame(big)).toThrow(expect.objectContaining({ code: "PROTOCOL" }))
  })

  it.each([
    ["REQ too short", "0110" + "00".repeat(40)],
    ["CREDIT without subject", "011100000001"],
    ["CANCEL without subject", "0112"],
    ["holder frame type on the control subject", "010200000005"],
  ])("rejects a malformed control message (%s) with PROTOCOL", (_what, hex) => {
    expect(() => decodeControl(fromHex(hex)!)).toThrow(expect.objectContaining({ code: "PROTOCOL" }))
  })

  it("truncates long ERR messages so the frame stays bounded", () => {
    const frame = encodeErr(ErrCode.INTERNAL, "x".repeat(5000))
    expect(frame.length).toBeLessThanOrEqual(3 + 1024)
    expect(decodeHolderFrame(frame)).toMatchObject({ type: "err", code: ErrCode.INTERNAL })
  })

  it("maps error classes to ERR codes and back", () => {
    const hash = new Uint8Array(32)
    expect(errCodeOf(new NotFoundError("ab"))).toBe(ErrCode.NOT_FOUND)
    expect(errCodeOf(new TooLargeError("chunk", 2, 1))).toBe(ErrCode.TOO_LARGE)
    expect(errCodeOf(new ProtocolError("x"))).toBe(ErrCode.PROTOCOL)
    expect(errCodeOf(new Error("boom"))).toBe(ErrCode.INTERNAL)
    expect(errorFromErr(ErrCode.NOT_FOUND, "", hash, "n1").code).toBe("NOT_FOUND")
    expect(errorFromErr(ErrCode.TOO_LARGE, "", hash, "n1").code).toBe("TOO_LARGE")
    expect(errorFromErr(ErrCode.PROTOCOL, "", hash, "n1").code).toBe("PROTOCOL")
    expect(errorFromErr(ErrCode.BUSY, "", hash, "n1").code).toBe("NO_HOLDER")
    expect(errorFromErr(ErrCode.CLOSED, "", hash, "n1").code).toBe("CLOSED")
    expect(errorFromErr(ErrCode.INTERNAL, "", hash, "n1").code).toBe("STORAGE")
    expect(errorFromErr(200, "", hash, "n1").code).toBe("STORAGE")
  })
})
