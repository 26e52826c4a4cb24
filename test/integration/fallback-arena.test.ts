import { describe, expect, inject, it } from "vitest"
import { runFallbackChild } from "../support/child-fallback-run.ts"
import { tempDir } from "../support/temp.ts"

/**
 * A process whose address space is too small for a WebAssembly.Memory (V8 reserves ~10 GiB of
 * address space for each, whatever its size) but not for ordinary buffers: RLIMIT_AS, what
 * `ulimit -v` sets, lowered by the child itself to what it uses plus 6 GiB once tsx (which
 * instantiates wasm at startup) is up. The 96 MiB page-aligned receive arena cannot be made;
 * `Blobs.open({ nats })` must still open, and the nodes move bytes.
 */
const BYTES = 12 << 20

describe("receive arenas that cannot be allocated page-aligned", () => {
  it("Blobs.open({ nats }) opens under a small address-space limit, and a blob moves between two nodes", async () => {
    const dir = await tempDir()
    try {
      const { report, ms } = await runFallbackChild({ env: { FALLBACK_AS_HEADROOM_GIB: "6" }, natsUrl: inject("natsUrl"), dir: dir.path, bytes: BYTES, seed: 7 })
      console.log(`address space limited to ${(report.addressSpaceLimit! / 2 ** 30).toFixed(1)} GiB: put ${report.ms.put} ms, fetch ${report.ms.fetch} ms; process ${ms} ms`)
      expect(report.addressSpaceLimit).toBeGreaterThan(0)
      // WebAssembly is there; only its memory cannot be had
      expect(report.webAssembly).toBe("object")
      expect(report.alignedMemory).toBe(false)
      expect(report.arenas.created).toBe(2)
      expect(report.arenas.fallback).toBe(2)
      expect(report.writes.direct).toBe(0)
      expect(report.writes.staged).toBe(0)
      expect(report.chunks).toBeGreaterThanOrEqual(2)
      expect(report.same).toEqual({ get: true, fetch: true, fetchedGet: true })
      expect(report.fetchedFromPeer).toBeGreaterThanOrEqual(BYTES)
    } finally {
      await dir.remove()
    }
  }, 120_000)

  it("without the limit, the same child takes the fast paths (so the test above cannot pass through them)", async () => {
    const dir = await tempDir()
    try {
      const { report } = await runFallbackChild({ natsUrl: inject("natsUrl"), dir: dir.path, bytes: BYTES, seed: 7 })
      expect(report.addressSpaceLimit).toBeNull()
      expect(report.hash).toEqual(["native", "native"])
      expect(report.alignedMemory).toBe(true)
      expect(report.arenas.fallback).toBe(0)
      expect(report.writes.direct).toBeGreaterThanOrEqual(report.chunks)
      expect(report.same).toEqual({ get: true, fetch: true, fetchedGet: true })
    } finally {
      await dir.remove()
    }
  }, 120_000)
})
