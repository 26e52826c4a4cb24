import { describe, expect, inject, it } from "vitest"
import { runArtifactReady } from "../../examples/artifact-ready.ts"

describe("examples/artifact-ready", () => {
  it("both consumers resolve the announced ref to the producer's exact bytes, fetched from peers", async () => {
    const size = 20 << 20
    const summary = await runArtifactReady({ natsUrl: inject("natsUrl"), size })
    expect(summary.consumers.map((c) => c.node).sort()).toEqual(["consumer-1", "consumer-2"])
    for (const c of summary.consumers) {
      expect(c.ref).toBe(summary.ref)
      expect(c.bytes).toBe(size)
      expect(c.sha256).toBe(summary.sha256)
      expect(c.verified).toBe(true)
      const fromPeers = Object.values(c.sources.peers).reduce((a, b) => a + b, 0)
      expect(fromPeers).toBeGreaterThanOrEqual(size)
      expect(c.sources.peers.producer ?? 0).toBeGreaterThan(0)
      expect(c.sources.disk + c.sources.cache).toBe(0)
    }
    expect(summary.consumers[0]!.sha256).toBe(summary.consumers[1]!.sha256)
  })
})
