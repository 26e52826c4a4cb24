import { describe, expect, it } from "vitest"
import { HolderPenalties } from "../../plugin/holder-penalties.ts"

describe("HolderPenalties", () => {
  it("a holder blamed once is avoided for the base time, then tried again", () => {
    const p = new HolderPenalties(30_000, 600_000, 1_800_000)
    expect(p.isPenalized("h", 0)).toBe(false)
    expect(p.blame("h", 1000)).toBe(30_000)
    expect(p.isPenalized("h", 1000)).toBe(true)
    expect(p.isPenalized("h", 30_999)).toBe(true)
    expect(p.isPenalized("h", 31_000)).toBe(false)
    expect(p.isPenalized("other", 1000)).toBe(false)
  })

  it("a repeat offender is avoided twice as long each time, up to the maximum", () => {
    const p = new HolderPenalties(30_000, 600_000, 1_800_000)
    const got: number[] = []
    for (let i = 0; i < 7; i++) got.push(p.blame("liar", i * 1000))
    expect(got).toEqual([30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000])
    expect(p.strikesOf("liar", 6000)).toBe(7)
    expect(p.isPenalized("liar", 6000 + 599_999)).toBe(true)
  })

  it("a holder that served a verified chunk is forgiven at once: its next failure starts from the base again", () => {
    const p = new HolderPenalties(30_000, 600_000, 1_800_000)
    p.blame("h", 0)
    p.blame("h", 1)
    p.credit("h")
    expect(p.isPenalized("h", 2)).toBe(false)
    expect(p.strikesOf("h", 2)).toBe(0)
    expect(p.blame("h", 3)).toBe(30_000)
  })

  it("strikes older than the forget time no longer count (an honest node's bad moment decays)", () => {
    const p = new HolderPenalties(30_000, 600_000, 1_800_000)
    p.blame("h", 0)
    p.blame("h", 10)
    expect(p.strikesOf("h", 1_800_009)).toBe(2)
    expect(p.strikesOf("h", 1_800_010)).toBe(0)
    expect(p.blame("h", 1_800_010)).toBe(30_000)
  })

  it("remembers a bounded number of holders however many made-up names fail", () => {
    const p = new HolderPenalties()
    for (let i = 0; i < 10_000; i++) p.blame(`fake-${i}`, i)
    expect(p.size).toBeLessThanOrEqual(4096)
    // the most recently blamed are the ones kept
    expect(p.isPenalized("fake-9999", 10_000)).toBe(true)
    expect(p.isPenalized("fake-0", 10_000)).toBe(false)
  })
})
