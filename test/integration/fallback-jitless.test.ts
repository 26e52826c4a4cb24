import { describe, expect, inject, it } from "vitest"
import { runFallbackChild } from "../support/child-fallback-run.ts"
import { tempDir } from "../support/temp.ts"

/**
 * `node --jitless` has no WebAssembly, and DATAFORTS_NO_NATIVE=1 turns off the native hash
 * and the addons: the package must still import, put, get and fetch, on its pure-JS hash
 * (noble, ~1.4 MB/s here under --jitless), ordinary receive arenas and buffered writes.
 * 12 MiB of seeded bytes is 3 chunks under FastCDC (min 1 / avg 4 / max 16 MiB). Hashing a
 * 4 MiB chunk blocks the event loop for ~3 s here, so the two nodes (one process) beat every 5 s.
 */
const BYTES = 12 << 20

describe("the package under node --jitless, with no native parts", () => {
  it("puts, gets and fetches a multi-chunk blob between two nodes on a real nats-server through the fallbacks", async () => {
    const dir = await tempDir()
    try {
      const { report, ms } = await runFallbackChild({ nodeArgs: ["--jitless"], env: { DATAFORTS_NO_NATIVE: "1", FALLBACK_HEARTBEAT_MS: "5000" }, natsUrl: inject("natsUrl"), dir: dir.path, bytes: BYTES, seed: 5 })
      console.log(`--jitless, 12 MiB, ${report.chunks} chunks: put ${report.ms.put} ms, get ${report.ms.get} ms, fetch ${report.ms.fetch} ms, get of the fetched copy ${report.ms.fetchedGet} ms; process ${ms} ms`)
      // the fallbacks, not the fast paths
      expect(report.webAssembly).toBe("undefined")
      expect(report.hash).toEqual(["noble", "noble"])
      expect(report.alignedMemory).toBe(false)
      expect(report.arenas.created).toBe(2)
      expect(report.arenas.fallback).toBe(2)
      expect(report.writes.direct).toBe(0)
      expect(report.writes.staged).toBe(0)
      expect(report.writes.buffered).toBeGreaterThanOrEqual(2 * report.chunks)
      // and the bytes
      expect(report.chunks).toBeGreaterThanOrEqual(2)
      expect(report.same).toEqual({ get: true, fetch: true, fetchedGet: true })
      expect(report.fetchedFromPeer).toBeGreaterThanOrEqual(BYTES)
    } finally {
      await dir.remove()
    }
  }, 300_000)
})
