import { describe, expect, it } from "vitest"
import { spawnTs } from "../support/child.ts"

interface Report {
  tuned: boolean
  faultsPerMiB: number
  rssMiB: number
  afterQuiet: { rssMiB: number; trims: number }
}

async function churn(mode: "tuned" | "default"): Promise<Report> {
  const child = spawnTs("child-malloc.ts", [mode])
  const line = await child.line((l) => l.startsWith("{"), 60_000)
  await child.exited
  return JSON.parse(line) as Report
}

describe("malloc holds freed memory while bytes move (glibc, native/malloc-tune)", () => {
  it("reuses freed chunk buffers instead of faulting fresh pages, and gives the memory back once quiet", async () => {
    const plain = await churn("default")
    const held = await churn("tuned")
    console.log(`page faults per MiB of chunk churn: default ${plain.faultsPerMiB.toFixed(1)}, held ${held.faultsPerMiB.toFixed(1)}; held RSS ${held.rssMiB.toFixed(0)} MiB, after quiet ${held.afterQuiet.rssMiB.toFixed(0)} MiB`)
    expect(plain.tuned).toBe(false)
    expect(held.tuned).toBe(true)
    // 256 faults per MiB is every page fresh; reused memory faults almost none
    expect(held.faultsPerMiB).toBeLessThan(plain.faultsPerMiB / 4)
    // the churn's ~100 MiB stayed resident while busy, and went back once quiet
    expect(held.afterQuiet.trims).toBeGreaterThanOrEqual(1)
    expect(held.rssMiB - held.afterQuiet.rssMiB).toBeGreaterThan(64)
  }, 120_000)
})
