import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, inject, it } from "vitest"
import { freshPrefix } from "../support/nodes.ts"
import { until } from "../support/poll.ts"
import { formatSoak, runSoak } from "../support/soak.ts"

const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length

/**
 * The suite's soak (test/support/soak.ts; `npm run soak` runs it longer with bigger blobs):
 * 4 node processes, 64 concurrent transfers (64 KiB–4 MiB) plus small gets, 6 s of warm-up
 * load and 50 s measured, one node leaving and joining every 6 s (closed and reopened, or
 * killed with SIGKILL and restarted on its store). On 2 cores vitest runs one file at a time
 * (maxWorkers = cores - 1), so the soak does not compete with other files' timing.
 */
describe("soak", () => {
  it("64 concurrent transfers with holders leaving and joining: every read verified or retried after a typed failure, RSS flat, fds, subscriptions and timers back to baseline", async () => {
    const root = await mkdtemp(join(tmpdir(), "df-soak-test-"))
    const driverTimers = timers()
    try {
      const report = await runSoak({
        url: inject("natsUrl"),
        prefix: freshPrefix(),
        root,
        seconds: 50,
        warmupSeconds: 6,
        seed: 20261204,
        concurrency: 64,
        blobs: 32,
        minBytes: 64 << 10,
        maxBytes: 4 << 20,
        smallBlobs: 64,
        smallMin: 1 << 10,
        smallMax: 8 << 10,
        smallConcurrency: 4,
        churnEveryMs: 6_000,
        downMs: 2_000,
        cacheBytes: 16 << 20,
        rssTolerance: 0.1,
        settleMs: 15_000,
      })
      console.log(formatSoak(report))
      // bytes: nothing wrong, nothing untyped, every failed read retried until it succeeded
      expect(report.wrongBytes).toBe(0)
      expect(report.untypedSamples).toEqual([])
      expect(report.untyped).toBe(0)
      expect(report.unrecovered).toBe(0)
      expect(report.transfers).toBeGreaterThan(64)
      expect(report.smallGets).toBeGreaterThan(0)
      // churn happened, and reads in flight on a leaving node were failed typed and retried
      expect(report.joins).toBeGreaterThanOrEqual(4)
      expect(report.leaves).toBe(report.joins)
      expect(report.retries).toBeGreaterThan(0)
      expect(Object.keys(report.errors).every((code) => /^[A-Z_]+$/.test(code) && code !== "UNTYPED")).toBe(true)
      for (const n of report.nodes) {
        // RSS: the last quarter's mean within 10 % of the second quarter's (processes that lived through the load)
        if (n.rss.flat !== "restarted") expect({ node: n.node, q2: n.rss.q2, q4: n.rss.q4, flat: n.rss.flat }).toEqual({ node: n.node, q2: n.rss.q2, q4: n.rss.q4, flat: true })
        // fds, subscriptions, timers (and other handles) no more than after warm-up
        expect({ node: n.node, fds: n.end.fds.total <= n.start.fds.total, subs: n.end.subs <= n.start.subs, timers: n.end.timers <= n.start.timers, all: n.backToBaseline }).toEqual({ node: n.node, fds: true, subs: true, timers: true, all: true })
      }
      // the two gracefully closed nodes lived through the load in one process each
      expect(report.nodes.filter((n) => n.leave === "close").every((n) => n.pids.length === 1 && n.leaves > 0)).toBe(true)
      expect(report.nodes.filter((n) => n.leave === "kill").some((n) => n.pids.length > 1)).toBe(true)
      expect(report.driver.rss.flat).toBe(true)
      expect(report.ok).toBe(true)
      // and the engine itself left no timer behind in this process
      await until(() => timers() <= driverTimers, `driver timers back to ${driverTimers}`)
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  }, 180_000)
})
