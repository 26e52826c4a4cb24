import { describe, expect, it } from "vitest"
import {
  BATCH_CHUNK_MAX_BYTES,
  decodeBatchReply,
  decodeBatchRequest,
  encodeBatchReply,
  encodeBatchRequest,
} from "../../transfer/batch.ts"
import { codeOfSync } from "../support/expect.ts"

describe("small-chunk batch codec", () => {
  it("pins the request and reply bytes (test vectors in docs/PROTOCOL.md)", () => {
    const req = encodeBatchRequest([new Uint8Array(32).fill(0xaa), new Uint8Array(32).fill(0xbb)])
    expect(Buffer.from(req).toString("hex")).toBe(`010002${"aa".repeat(32)}${"bb".repeat(32)}`)
    const reply = encodeBatchReply([{ status: 0, bytes: new Uint8Array([1, 2, 3]) }, { status: 1 }, { status: 2 }, { status: 3 }])
    expect(Buffer.from(reply).toString("hex")).toBe("010004" + "00" + "00000003" + "010203" + "01" + "02" + "03")
  })

  it("round-trips requests and replies", () => {
    const hashes = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)]
    expect(decodeBatchRequest(encodeBatchRequest(hashes)).map((h) => h[0])).toEqual([1, 2])
    const entries = decodeBatchReply(encodeBatchReply([{ status: 0, bytes: new Uint8Array(10) }, { status: 1 }]), 2)
    expect(entries.map((e) => e.status)).toEqual([0, 1])
  })

  it("rejects malformed requests and replies with PROTOCOL", () => {
    expect(codeOfSync(() => decodeBatchRequest(new Uint8Array([1, 0, 2, 0])))).toBe("PROTOCOL")
    expect(codeOfSync(() => decodeBatchRequest(new Uint8Array([9, 0, 0])))).toBe("PROTOCOL")
    const good = encodeBatchReply([{ status: 0, bytes: new Uint8Array(4) }])
    expect(codeOfSync(() => decodeBatchReply(good.subarray(0, good.length - 1), 1))).toBe("PROTOCOL")
    expect(codeOfSync(() => decodeBatchReply(good, 2))).toBe("PROTOCOL")
    const trailing = new Uint8Array(good.length + 1)
    trailing.set(good)
    expect(codeOfSync(() => decodeBatchReply(trailing, 1))).toBe("PROTOCOL")
    const liar = good.slice()
    new DataView(liar.buffer).setUint32(4, BATCH_CHUNK_MAX_BYTES + 1)
    expect(codeOfSync(() => decodeBatchReply(liar, 1))).toBe("PROTOCOL")
    expect(codeOfSync(() => decodeBatchReply(new Uint8Array([1, 0, 1, 7]), 1))).toBe("PROTOCOL")
  })
})
