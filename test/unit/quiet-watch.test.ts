import { describe, expect, it } from "vitest"
import { QuietWatch } from "../../plugin/allocator.ts"

describe("QuietWatch", () => {
  it("reports quiet once, on the first look where the total stopped moving after it moved", () => {
    const w = new QuietWatch()
    expect(w.quietened(10)).toBe(false) // first look: it moved (from nothing)
    expect(w.quietened(25)).toBe(false)
    expect(w.quietened(25)).toBe(true)
    expect(w.quietened(25)).toBe(false) // still quiet: reported already
    expect(w.quietened(25)).toBe(false)
  })

  it("reports quiet again after the total moves again", () => {
    const w = new QuietWatch()
    w.quietened(1)
    expect(w.quietened(1)).toBe(true)
    expect(w.quietened(2)).toBe(false)
    expect(w.quietened(3)).toBe(false)
    expect(w.quietened(3)).toBe(true)
  })

  it("treats a smaller total (a node closed) as movement, not quiet", () => {
    const w = new QuietWatch()
    w.quietened(100)
    w.quietened(100)
    expect(w.quietened(40)).toBe(false)
    expect(w.quietened(40)).toBe(true)
  })
})
