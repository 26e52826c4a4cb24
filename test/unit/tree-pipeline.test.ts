import { describe, expect, it } from "vitest"
import { GroupPipeline } from "../../plugin/tree-pipeline.ts"
import { needsDeferredMode } from "../../plugin/tree-materialize.ts"
import { seededRandom } from "../support/random.ts"
import { codeOf } from "../support/expect.ts"

const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

describe("GroupPipeline: bounded groups, and actions after everything pushed before them", () => {
  it("runs an action only after every item pushed before it is done, whatever order groups finish in, with at most inFlight groups running", async () => {
    const random = seededRandom(7)
    const done = new Set<number>()
    const log: string[] = []
    let running = 0
    let peak = 0
    const pipeline = new GroupPipeline<number>({
      groupSize: 4,
      inFlight: 3,
      maxPendingActions: 1000,
      run: async (group) => {
        peak = Math.max(peak, ++running)
        await tick(Math.floor(random() * 8)) // later groups often finish first
        for (const i of group) done.add(i)
        running--
      },
    })
    const checks: Array<{ action: number; before: number; missing: number[] }> = []
    let item = 0
    for (let action = 0; action < 12; action++) {
      const n = Math.floor(random() * 7)
      for (let k = 0; k < n; k++) await pipeline.push(item++)
      const before = item
      await pipeline.after(() => {
        const missing = Array.from({ length: before }, (_, i) => i).filter((i) => !done.has(i))
        checks.push({ action, before, missing })
        log.push(`a${action}`)
      })
    }
    await pipeline.finish()
    await pipeline.close()
    expect(checks.map((c) => c.missing)).toEqual(checks.map(() => []))
    // in the order they were asked for
    expect(log).toEqual(Array.from({ length: 12 }, (_, i) => `a${i}`))
    expect(done.size).toBe(item)
    expect(peak).toBeLessThanOrEqual(3)
  })

  it("with too many actions waiting, after() waits for the groups (the queue stays bounded)", async () => {
    let pending = 0
    let peakPending = 0
    const pipeline = new GroupPipeline<number>({ groupSize: 1000, inFlight: 2, maxPendingActions: 5, run: () => tick(5) })
    for (let i = 0; i < 50; i++) {
      await pipeline.push(i)
      pending++
      peakPending = Math.max(peakPending, pending)
      await pipeline.after(() => void pending--)
    }
    await pipeline.finish()
    expect(pending).toBe(0)
    expect(peakPending).toBeLessThanOrEqual(5)
  })

  it("a failing group fails the next call and finish with its error, stops the others, and close waits for them", async () => {
    let stillRunning = 0
    const pipeline = new GroupPipeline<number>({
      groupSize: 1,
      inFlight: 3,
      maxPendingActions: 10,
      run: async (group, signal) => {
        stillRunning++
        try {
          if (group[0] === 1) throw Object.assign(new Error("disk"), { code: "DISK_FULL" })
          await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }))
        } finally {
          stillRunning--
        }
      },
    })
    const actionRan: number[] = []
    const code = await codeOf(async () => {
      for (let i = 0; i < 10; i++) {
        await pipeline.push(i)
        await pipeline.after(() => void actionRan.push(i))
      }
      await pipeline.finish()
    })
    await pipeline.close()
    expect(code).toBe("DISK_FULL")
    expect(stillRunning).toBe(0)
    // the actions after a failed group never run
    expect(actionRan.every((i) => i < 1)).toBe(true)
  })

  it("the caller's abort rejects with ABORTED", async () => {
    const ctrl = new AbortController()
    const pipeline = new GroupPipeline<number>({ groupSize: 1, inFlight: 1, maxPendingActions: 10, run: () => tick(5), signal: ctrl.signal })
    await pipeline.push(0)
    ctrl.abort()
    expect(await codeOf(pipeline.push(1))).toBe("ABORTED")
    await pipeline.close()
  })
})

describe("needsDeferredMode", () => {
  it("defers a directory mode that would stop its owner creating entries, or that carries setuid/setgid/sticky", () => {
    expect([0o755, 0o700, 0o777, 0o750].map(needsDeferredMode)).toEqual([false, false, false, false])
    expect([0o555, 0o500, 0o000, 0o644, 0o2755, 0o1777].map(needsDeferredMode)).toEqual([true, true, true, true, true, true])
  })
})
