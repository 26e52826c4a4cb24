import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { seededBytes } from "../support/bytes.ts"
import { tempDir } from "../support/temp.ts"

const valueOf = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.split(" ")[1])
}

/**
 * The malloc-tune addon turned off (DATAFORTS_NO_NATIVE=malloc-tune, as where it did not
 * build or the libc is not glibc): a node asked to tune malloc opens and moves bytes, and
 * says it did not tune. The addon is looked up when plugin/allocator.ts loads, so the
 * modules are imported afresh after the variable is set.
 */
describe("no malloc tuning", () => {
  beforeAll(() => {
    vi.stubEnv("DATAFORTS_NO_NATIVE", "malloc-tune")
    vi.resetModules()
  })
  afterAll(() => {
    vi.unstubAllEnvs()
  })

  it("Blobs.open({ tuneMalloc: true }) opens and works, and dataforts_malloc_tuned is 0", async () => {
    const { Blobs, metricsRegistry } = await import("../../plugin/index.ts")
    const { allocatorStats, tuneMalloc } = await import("../../plugin/allocator.ts")
    const dir = await tempDir()
    try {
      const blobs = await Blobs.open({ dir: dir.path, tuneMalloc: true })
      try {
        const bytes = seededBytes((6 << 20) + 3, 21)
        const ref = await blobs.put(bytes)
        expect(Buffer.compare(await blobs.get(ref), bytes)).toBe(0)
        expect(tuneMalloc()).toBe(false)
        expect(allocatorStats.tuned).toBe(false)
        const text = await metricsRegistry(blobs).metrics()
        expect(valueOf(text, "dataforts_malloc_tuned")).toBe(0)
        expect(valueOf(text, "dataforts_malloc_trims_total")).toBe(0)
        // the arena fallback series is there (0: this process could make page-aligned arenas)
        expect(valueOf(text, 'dataforts_receive_arenas_total{event="fallback"}')).toBe(0)
      } finally {
        await blobs.close()
      }
    } finally {
      await dir.remove()
    }
  })

  it("was forced: the addon is here and loads when not turned off", async () => {
    const { addonDisabled, loadAddon } = await import("../../plugin/native-addon.ts")
    expect(addonDisabled("malloc-tune")).toBe(true)
    expect(loadAddon("malloc-tune")).toBeUndefined()
    vi.unstubAllEnvs()
    expect(loadAddon("malloc-tune")).toBeDefined()
  })
})
