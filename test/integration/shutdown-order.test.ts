import { spawn } from "node:child_process"
import { join } from "node:path"
import { describe, expect, inject, it } from "vitest"

/** After "done" the worker must exit by itself (no process.exit) within this. */
const EXIT_BOUND_MS = 10_000

/**
 * Runs test/support/child-shutdown.ts for one shutdown order; resolves with its exit code,
 * how long it took to exit after printing "done", and its stderr (what it leaked, on failure).
 * A worker that does not exit in time is killed.
 */
function runOrder(url: string, order: string): Promise<{ code: number | null; signal: string | null; done: boolean; exitAfterDoneMs: number; stderr: string }> {
  const proc = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../support/child-shutdown.ts"), url, order], { stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  let doneAt: number | undefined
  let killer: ReturnType<typeof setTimeout> | undefined
  const arm = (ms: number) => {
    clearTimeout(killer)
    killer = setTimeout(() => proc.kill("SIGKILL"), ms)
  }
  arm(60_000) // setup and transfers
  proc.stdout.on("data", (d: Buffer) => {
    stdout += d.toString()
    if (doneAt === undefined && stdout.includes("done\n")) {
      doneAt = performance.now()
      arm(EXIT_BOUND_MS)
    }
  })
  proc.stderr.on("data", (d: Buffer) => (stderr = (stderr + d).slice(-8000)))
  return new Promise((resolve) =>
    proc.once("exit", (code, signal) => {
      clearTimeout(killer)
      resolve({ code, signal, done: doneAt !== undefined, exitAfterDoneMs: doneAt === undefined ? -1 : performance.now() - doneAt, stderr })
    }),
  )
}

describe("clean shutdown in any order", () => {
  const url = inject("natsUrl")

  // connection first, Blobs first, Blobs never closed, the connection gone mid-transfer, drained
  it.each(["nats-first", "blobs-first", "nats-only", "mid-transfer", "drain-first"])("%s: the process exits by itself, leaking no timer or handle", async (order) => {
    const r = await runOrder(url, order)
    const report = `order ${order}: exit ${r.code ?? r.signal}, ${Math.round(r.exitAfterDoneMs)} ms after done\n${r.stderr}`
    expect(r.done, report).toBe(true)
    expect(r.code, report).toBe(0)
    expect(r.exitAfterDoneMs, report).toBeLessThan(EXIT_BOUND_MS)
  })
})
