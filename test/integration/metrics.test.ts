import { afterEach, describe, expect, inject, it } from "vitest"
import { serveMetrics } from "../../plugin/index.ts"
import { DATA_MAX_PAYLOAD } from "../../transfer/constants.ts"
import { seededBytes } from "../support/bytes.ts"
import { freshPrefix, startNode, type TestNode } from "../support/nodes.ts"

const valueOf = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.split(" ")[1])
}

describe("Prometheus metrics", () => {
  const nodes: TestNode[] = []
  const url = inject("natsUrl")
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop()
  })

  it("counts ingest, peer fetches, serving and cache hits on /metrics", async () => {
    const prefix = freshPrefix()
    // a opts in to holding freed memory (off by default: it is process-wide)
    const [a, b] = await Promise.all(["a", "b"].map((n) => startNode(url, n, { prefix, tuneMalloc: n === "a" })))
    nodes.push(a!, b!)
    const bytes = seededBytes(3 << 20, 5)
    const ref = await a!.blobs.put(bytes)
    await b!.blobs.get(ref)
    await b!.blobs.get(ref)
    const ma = await serveMetrics(a!.blobs, 0)
    const mb = await serveMetrics(b!.blobs, 0)
    try {
      const ta = await (await fetch(`http://127.0.0.1:${ma.port}/metrics`)).text()
      const tb = await (await fetch(`http://127.0.0.1:${mb.port}/metrics`)).text()
      expect(valueOf(ta, "dataforts_ingested_bytes_total")).toBe(bytes.length)
      expect(valueOf(ta, "dataforts_served_bytes_total")).toBeGreaterThanOrEqual(bytes.length)
      expect(valueOf(tb, "dataforts_fetched_bytes_total")).toBeGreaterThanOrEqual(bytes.length)
      // whole frames went out as PUB-record runs; at most a frame per chunk was published alone
      expect(valueOf(ta, 'dataforts_served_frames_total{path="direct"}')).toBeGreaterThanOrEqual(Math.floor(bytes.length / DATA_MAX_PAYLOAD) - 8)
      expect(valueOf(tb, 'dataforts_read_bytes_total{source="cache"}')).toBe(bytes.length)
      expect(valueOf(tb, "dataforts_nodes_live")).toBe(2)
      expect(tb).toContain("# TYPE dataforts_cache_hits_total counter")
      expect(ta).toContain("# TYPE dataforts_sender_server_wait_seconds_total counter")
      expect(valueOf(ta, "dataforts_sender_server_wait_seconds_total")).toBeGreaterThanOrEqual(0)
      // glibc with the addon built (CI's Debian), asked for by a: malloc holds freed memory while bytes move
      expect(valueOf(ta, "dataforts_malloc_tuned")).toBe(1)
      expect(tb).toContain("# TYPE dataforts_malloc_trims_total counter")
      // two nodes open in this process: one receive arena each
      expect(valueOf(tb, 'dataforts_receive_arenas_total{event="created"}')).toBeGreaterThanOrEqual(2)
      // both gets finished: nothing of theirs is still held against the node budget
      expect(valueOf(tb, "dataforts_read_inflight_bytes")).toBe(0)
    } finally {
      await ma.close()
      await mb.close()
    }
  })
})
