import { describe, expect, it } from "vitest"
import { ReadAheadGate } from "../../transfer/read-ahead-gate.ts"

describe("ReadAheadGate (a holder's reads ahead in the thread pool)", () => {
  it("lets `limit` reads ahead run and makes the rest wait, each once, in arrival order", () => {
    const gate = new ReadAheadGate<string>(2)
    expect(gate.tryStart("a")).toBe(true)
    expect(gate.tryStart("b")).toBe(true)
    expect(gate.tryStart("c")).toBe(false)
    expect(gate.tryStart("d")).toBe(false)
    expect(gate.tryStart("c")).toBe(false) // asked again: still one place in the queue
    expect(gate.running).toBe(2)
    expect(gate.next()).toBeUndefined() // no room yet
    gate.done()
    expect(gate.next()).toBe("c")
    expect(gate.tryStart("c")).toBe(true)
    expect(gate.next()).toBeUndefined()
    gate.done()
    gate.done()
    expect(gate.next()).toBe("d")
    expect(gate.next()).toBeUndefined() // the queue is empty (d has not started yet, room is left)
  })

  it("never has more than `limit` running however reads start and finish", () => {
    const gate = new ReadAheadGate<number>(2)
    let peak = 0
    const running: number[] = []
    for (let step = 0; step < 200; step++) {
      const item = step % 7
      if (!running.includes(item) && gate.tryStart(item)) running.push(item)
      peak = Math.max(peak, gate.running)
      if (step % 3 === 0 && running.length > 0) {
        running.shift()
        gate.done()
        for (let n = gate.next(); n !== undefined; n = gate.next()) if (!running.includes(n) && gate.tryStart(n)) running.push(n)
      }
      expect(gate.running).toBe(running.length)
    }
    expect(peak).toBe(2)
  })
})
