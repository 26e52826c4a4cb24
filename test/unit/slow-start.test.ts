import { describe, expect, it } from "vitest"
import { SlowStart } from "../../plugin/slow-start.ts"

const tick = () => new Promise((r) => setImmediate(r))

describe("SlowStart (a fetch's first slots open as chunks arrive)", () => {
  it("starts two tasks at once and each further one after one more arrival", async () => {
    const ramp = new SlowStart(2)
    const started: number[] = []
    for (let k = 0; k < 6; k++) void ramp.ready(k).then(() => started.push(k))
    await tick()
    expect(started.sort()).toEqual([0, 1])
    ramp.arrived()
    await tick()
    expect(started.sort()).toEqual([0, 1, 2])
    ramp.arrived()
    ramp.arrived()
    await tick()
    expect(started.sort()).toEqual([0, 1, 2, 3, 4])
  })

  it("lets a waiting task go when its fetch is aborted", async () => {
    const ramp = new SlowStart(1)
    const ctrl = new AbortController()
    let went = false
    const p = ramp.ready(3, ctrl.signal).then(() => (went = true))
    await tick()
    expect(went).toBe(false)
    ctrl.abort()
    await p
    expect(went).toBe(true)
  })
})
