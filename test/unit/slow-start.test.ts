import { describe, expect, it } from "vitest"
import { SlowStart } from "../../plugin/slow-start.ts"

const tick = () => new Promise((r) => setImmediate(r))

describe("SlowStart (a fetch's first slots open as chunks arrive)", () => {
  it("starts two tasks at once and each arrival lets two more start (its own slot and one new)", async () => {
    const ramp = new SlowStart(2)
    const started: number[] = []
    for (let k = 0; k < 8; k++) void ramp.ready(k).then(() => started.push(k))
    await tick()
    expect(started.sort()).toEqual([0, 1])
    ramp.arrived()
    await tick()
    expect(started.sort()).toEqual([0, 1, 2, 3])
    ramp.arrived()
    await tick()
    expect(started.sort()).toEqual([0, 1, 2, 3, 4, 5])
  })

  it("lets a bounded fetch reach its full concurrency, not stay at the initial slots", async () => {
    // the shape of fetchBlob: a pool of six slots, each task waits for the ramp, fetches, arrives
    const ramp = new SlowStart(2)
    const bound = 6
    const tasks = 40
    let next = 0
    let inFlight = 0
    let peak = 0
    const peaks: number[] = []
    await Promise.all(
      Array.from({ length: bound }, async () => {
        while (next < tasks) {
          const k = next++
          await ramp.ready(k)
          inFlight++
          peak = Math.max(peak, inFlight)
          peaks.push(inFlight)
          await tick()
          await tick()
          inFlight--
          ramp.arrived()
        }
      }),
    )
    expect(peaks[0]).toBeLessThanOrEqual(2)
    expect(peak).toBe(bound)
  })

  it("lets a waiting task go when its fetch is aborted", async () => {
    const ramp = new SlowStart(1)
    const ctrl = new AbortController()
    let went = false
    const p = ramp.ready(5, ctrl.signal).then(() => (went = true))
    await tick()
    expect(went).toBe(false)
    ctrl.abort()
    await p
    expect(went).toBe(true)
  })
})
