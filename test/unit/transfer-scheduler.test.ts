import { describe, expect, it } from "vitest"
import { DATA_MAX_PAYLOAD, DEFAULT_QUANTUM_BYTES } from "../../transfer/constants.ts"
import { DeficitRoundRobin } from "../../transfer/scheduler.ts"

interface Flow {
  readonly id: string
  remaining: number
  credit: number
  sent: number
  finishedInRound?: number
}

/** Serves whole frames (≤ 8102 B) within the allowance and credit, like the sender. */
function simulate(flows: Flow[], drr: DeficitRoundRobin<Flow>, maxRounds: number): number {
  let round = 0
  const ready = (f: Flow) => f.remaining > 0 && f.credit > 0
  const serve = (f: Flow, allowance: number) => {
    let sent = 0
    for (;;) {
      const n = Math.min(DATA_MAX_PAYLOAD, f.remaining, f.credit)
      if (n <= 0 || n > allowance - sent) break
      f.remaining -= n
      f.credit -= n
      f.sent += n
      sent += n
    }
    if (f.remaining === 0) {
      f.finishedInRound = round
      drr.remove(f)
    }
    return sent
  }
  while (drr.size > 0 && round < maxRounds) {
    round++
    drr.round(ready, serve)
  }
  return round
}

const flow = (id: string, size: number, credit = Infinity): Flow => ({ id, remaining: size, credit, sent: 0 })

describe("deficit round robin by bytes", () => {
  it("a 16 MiB transfer does not starve 50 small ones: each finishes within its own quantum count of rounds", () => {
    const drr = new DeficitRoundRobin<Flow>(DEFAULT_QUANTUM_BYTES)
    const big = flow("big", 16 * 1024 * 1024)
    drr.add(big)
    const small = Array.from({ length: 50 }, (_, i) => flow(`s${i}`, 1 + ((i * 7919) % (200 * 1024))))
    for (const f of small) drr.add(f)
    simulate([big, ...small], drr, 10_000)
    for (const f of small) {
      const bound = Math.ceil(f.sent / DEFAULT_QUANTUM_BYTES) + 1
      expect(f.finishedInRound, f.id).toBeLessThanOrEqual(bound)
    }
    // every small transfer done within 4 rounds, while the big one still has most of its bytes to go
    expect(Math.max(...small.map((f) => f.finishedInRound!))).toBeLessThanOrEqual(4)
    expect(big.finishedInRound).toBeGreaterThan(100)
  })

  it("gives each backlogged flow the same bytes per round, whatever its size", () => {
    const drr = new DeficitRoundRobin<Flow>(DEFAULT_QUANTUM_BYTES)
    const a = flow("a", 16 * 1024 * 1024)
    const b = flow("b", 4 * 1024 * 1024)
    drr.add(a)
    drr.add(b)
    simulate([a, b], drr, 20)
    expect(a.sent).toBe(b.sent)
    expect(a.sent).toBe(20 * DEFAULT_QUANTUM_BYTES)
  })

  it("carries an unused remainder to the next round (frames larger than the leftover wait)", () => {
    const quantum = DATA_MAX_PAYLOAD + 100
    const drr = new DeficitRoundRobin<Flow>(quantum)
    const f = flow("f", 10 * DATA_MAX_PAYLOAD)
    drr.add(f)
    simulate([f], drr, 1)
    expect(f.sent).toBe(DATA_MAX_PAYLOAD)
    expect(drr.deficitOf(f)).toBe(100)
  })

  it("a flow without credit banks no deficit while it waits", () => {
    const drr = new DeficitRoundRobin<Flow>(DEFAULT_QUANTUM_BYTES)
    const blocked = flow("blocked", 1024 * 1024, 0)
    const other = flow("other", 1024 * 1024)
    drr.add(blocked)
    drr.add(other)
    simulate([blocked, other], drr, 5)
    expect(drr.deficitOf(blocked)).toBe(0)
    blocked.credit = Infinity
    const before = blocked.sent
    simulate([blocked, other], drr, 1)
    expect(blocked.sent - before).toBeLessThanOrEqual(DEFAULT_QUANTUM_BYTES)
  })

  it("tolerates removal of flows during a round, and re-adding is a no-op", () => {
    const drr = new DeficitRoundRobin<Flow>(DEFAULT_QUANTUM_BYTES)
    const a = flow("a", 10)
    const b = flow("b", 10)
    drr.add(a)
    drr.add(a)
    drr.add(b)
    expect(drr.size).toBe(2)
    drr.round(
      () => true,
      (f) => {
        drr.remove(a)
        drr.remove(b)
        return f.remaining
      },
    )
    expect(drr.size).toBe(0)
  })

  it("rejects a non-positive quantum", () => {
    expect(() => new DeficitRoundRobin(0)).toThrow(RangeError)
  })
})
