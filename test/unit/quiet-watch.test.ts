import { describe, expect, it, vi } from "vitest"
import { holdFreedMemoryWhileBusy, QuietWatch } from "../../plugin/allocator.ts"

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

  it("reports nothing pending once quiet was reported", () => {
    const w = new QuietWatch()
    w.quietened(5)
    expect(w.pending).toBe(true)
    w.quietened(5)
    expect(w.pending).toBe(false)
  })
})

describe("holding freed memory while nodes move bytes", () => {
  it("keeps watching after the last node closes, until the quiet trim, then stops", () => {
    vi.useFakeTimers()
    try {
      let moved = 0
      const unregister = holdFreedMemoryWhileBusy(() => moved, 1000)
      expect(vi.getTimerCount()).toBe(1)
      moved = 4096
      vi.advanceTimersByTime(1000)
      unregister() // a node closes; another may open in a moment, so memory is still held
      vi.advanceTimersByTime(1000) // the total fell to nothing: movement, not quiet
      expect(vi.getTimerCount()).toBe(1)
      vi.advanceTimersByTime(1000) // quiet: trimmed, and nothing is left to watch
      expect(vi.getTimerCount()).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })
})
