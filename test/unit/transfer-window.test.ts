import { describe, expect, it } from "vitest"
import { DATA_MAX_PAYLOAD, DEFAULT_WINDOW_BYTES } from "../../transfer/constants.ts"
import { CreditWindow, Reassembly, SendCredit } from "../../transfer/window.ts"

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill)

describe("reassembly", () => {
  it("accepts in-order frames and completes at exactly the length", () => {
    const r = new Reassembly(10)
    expect(r.accept(0, bytes(4, 1))).toBe("ok")
    expect(r.accept(4, bytes(6, 2))).toBe("ok")
    expect(r.complete).toBe(true)
    expect([...r.bytes]).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
  })

  it("reports a frame after a missing one as a gap and keeps only the contiguous prefix", () => {
    const r = new Reassembly(12)
    expect(r.accept(0, bytes(4, 1))).toBe("ok")
    expect(r.accept(8, bytes(4, 3))).toBe("gap")
    expect(r.contiguous).toBe(4)
    expect([...r.bytes.subarray(8)]).toEqual([0, 0, 0, 0])
    // the re-request from the contiguous offset fills it
    expect(r.accept(4, bytes(4, 2))).toBe("ok")
    expect(r.accept(8, bytes(4, 3))).toBe("ok")
    expect(r.complete).toBe(true)
  })

  it("ignores a resent frame below the contiguous end (duplicate after a resume)", () => {
    const r = new Reassembly(8)
    r.accept(0, bytes(4, 1))
    expect(r.accept(0, bytes(4, 9))).toBe("dup")
    expect([...r.bytes.subarray(0, 4)]).toEqual([1, 1, 1, 1])
  })

  it("rejects a frame that straddles the contiguous end or runs past the length", () => {
    const r = new Reassembly(8)
    r.accept(0, bytes(4, 1))
    expect(r.accept(2, bytes(4, 2))).toBe("invalid")
    expect(r.accept(4, bytes(5, 2))).toBe("invalid")
    expect(r.contiguous).toBe(4)
  })

  it("handles a zero-length chunk", () => {
    const r = new Reassembly(0)
    expect(r.complete).toBe(true)
    expect(r.accept(0, new Uint8Array(0))).toBe("dup")
  })
})

describe("credit window", () => {
  it("grants window bytes up front and returns credit about every window/4 consumed", () => {
    const w = new CreditWindow(DEFAULT_WINDOW_BYTES)
    expect(w.granted).toBe(DEFAULT_WINDOW_BYTES)
    expect(w.ackEvery).toBe(Math.floor(DEFAULT_WINDOW_BYTES / 4))
    let grants = 0
    for (let off = DATA_MAX_PAYLOAD; off <= 16 * 1024 * 1024; off += DATA_MAX_PAYLOAD) {
      const g = w.consumed(off)
      if (g !== undefined) {
        grants++
        expect(g).toBe(off + DEFAULT_WINDOW_BYTES)
      }
      // in flight never exceeds the window
      expect(w.granted - off).toBeLessThanOrEqual(DEFAULT_WINDOW_BYTES)
    }
    // one ack per quarter window (64 frames by default)
    const framesPerAck = DEFAULT_WINDOW_BYTES / 4 / DATA_MAX_PAYLOAD
    expect(framesPerAck).toBe(64)
    expect(grants).toBe(Math.floor(16 * 1024 * 1024 / DATA_MAX_PAYLOAD / framesPerAck))
  })

  it("is cumulative and never regresses", () => {
    const w = new CreditWindow(4 * DATA_MAX_PAYLOAD, 0, DATA_MAX_PAYLOAD)
    expect(w.consumed(2 * DATA_MAX_PAYLOAD)).toBe(6 * DATA_MAX_PAYLOAD)
    expect(w.consumed(DATA_MAX_PAYLOAD)).toBeUndefined()
    expect(w.granted).toBe(6 * DATA_MAX_PAYLOAD)
  })

  it("starts from a resume offset", () => {
    const w = new CreditWindow(DEFAULT_WINDOW_BYTES, 1_000_000)
    expect(w.granted).toBe(1_000_000 + DEFAULT_WINDOW_BYTES)
    expect(w.allows(1_000_000 + DEFAULT_WINDOW_BYTES)).toBe(true)
    expect(w.allows(1_000_001 + DEFAULT_WINDOW_BYTES)).toBe(false)
  })

  it("clamps ackEvery into the window so the holder can never stall", () => {
    const w = new CreditWindow(2 * DATA_MAX_PAYLOAD, 0, 10 * DATA_MAX_PAYLOAD)
    expect(w.ackEvery).toBe(2 * DATA_MAX_PAYLOAD)
    expect(() => new CreditWindow(100)).toThrow(RangeError)
  })

  it("the holder's view takes the maximum of the credits it receives", () => {
    const c = new SendCredit(100)
    expect(c.update(50)).toBe(false)
    expect(c.update(200)).toBe(true)
    expect(c.update(150)).toBe(false)
    expect(c.limit).toBe(200)
  })
})
