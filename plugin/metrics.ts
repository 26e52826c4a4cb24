import { createServer, type Server } from "node:http"
import { Counter, Gauge, Registry } from "prom-client"
import { allocatorStats } from "./allocator.ts"
import type { Blobs } from "./blobs.ts"
import { arenaStats } from "./receive-arenas.ts"

type Kind = "counter" | "gauge"
interface Series {
  readonly labels?: Record<string, string>
  readonly value: number
}
interface Def {
  readonly name: string
  readonly help: string
  readonly kind: Kind
  readonly read: (b: Blobs) => number | Series[]
}

const m = (b: Blobs) => b.mesh

/**
 * What operators need, in Prometheus naming: cache hit rate, evictions and dwell time; bytes
 * ingested, read from cache and disk, fetched from peers, served to peers; transfers,
 * resumes, holder failures; membership and fold health; heat top-N. Values are read from
 * the layers' plain counters at scrape time, so nothing is counted twice or per frame.
 */
const DEFS: Def[] = [
  { name: "dataforts_ingested_bytes_total", help: "Bytes put into this node", kind: "counter", read: (b) => b.store.counters.bytesIngested },
  { name: "dataforts_stored_new_bytes_total", help: "Chunk bytes newly written (after dedup)", kind: "counter", read: (b) => b.store.counters.bytesStoredNew },
  { name: "dataforts_read_bytes_total", help: "Bytes read locally, by source", kind: "counter", read: (b) => [
    { labels: { source: "cache" }, value: b.store.counters.bytesReadCache },
    { labels: { source: "disk" }, value: b.store.counters.bytesReadDisk },
  ] },
  { name: "dataforts_integrity_failures_total", help: "Chunks that failed verification on disk", kind: "counter", read: (b) => b.store.counters.integrityFailures },
  { name: "dataforts_orphan_chunks_removed_total", help: "Unreferenced chunk files swept", kind: "counter", read: (b) => b.store.counters.orphansRemoved },
  { name: "dataforts_cache_hits_total", help: "Memory cache hits", kind: "counter", read: (b) => b.store.cache.stats.hits },
  { name: "dataforts_cache_misses_total", help: "Memory cache misses", kind: "counter", read: (b) => b.store.cache.stats.misses },
  { name: "dataforts_cache_evictions_total", help: "Memory cache evictions", kind: "counter", read: (b) => b.store.cache.stats.evictions },
  { name: "dataforts_cache_evicted_dwell_seconds_total", help: "Seconds evicted entries spent in the cache", kind: "counter", read: (b) => b.store.cache.stats.evictedDwellMs / 1000 },
  { name: "dataforts_cache_bytes", help: "Bytes in the memory cache", kind: "gauge", read: (b) => b.store.cache.stats.bytes },
  { name: "dataforts_cache_capacity_bytes", help: "Memory cache capacity", kind: "gauge", read: (b) => b.store.cache.capacity },
  { name: "dataforts_fetched_bytes_total", help: "Chunk bytes received from peers (user fetches)", kind: "counter", read: (b) => m(b)?.receiver.stats().bytesReceived ?? 0 },
  { name: "dataforts_fetches_total", help: "Chunk fetches from peers, by result", kind: "counter", read: (b) => {
    const s = m(b)?.receiver.stats()
    return [{ labels: { result: "ok" }, value: s?.fetchesCompleted ?? 0 }, { labels: { result: "failed" }, value: s?.fetchesFailed ?? 0 }]
  } },
  { name: "dataforts_fetch_resumes_total", help: "Fetches resumed after a gap, timeout or holder death", kind: "counter", read: (b) => m(b)?.receiver.stats().resumes ?? 0 },
  { name: "dataforts_reconnects_total", help: "Times this node's NATS connection came back after dropping (server restart, failover, slow-consumer cut-off)", kind: "counter", read: (b) => m(b)?.reconnects ?? 0 },
  { name: "dataforts_transfer_resumes_total", help: "Chunk fetches resumed after a connection fault, by reason (reconnect: ours came back; stall: a quiet holder asked again; not_listening: a holder not yet back after our reconnect; refetch: a chunk started over once its holders were reachable again)", kind: "counter", read: (b) => {
    const mesh = m(b)
    const f = mesh?.receiver.stats().faultResumes
    return [
      { labels: { reason: "reconnect" }, value: f?.reconnect ?? 0 },
      { labels: { reason: "stall" }, value: f?.stall ?? 0 },
      { labels: { reason: "not_listening" }, value: f?.notListening ?? 0 },
      { labels: { reason: "refetch" }, value: mesh?.refetches ?? 0 },
    ]
  } },
  { name: "dataforts_fetches_active", help: "Chunk fetches in flight", kind: "gauge", read: (b) => m(b)?.receiver.stats().activeFetches ?? 0 },
  { name: "dataforts_read_inflight_bytes", help: "Chunk bytes reads hold now (in flight, handed out or being written), within the node budget", kind: "gauge", read: (b) => m(b)?.bytesInFlight ?? 0 },
  { name: "dataforts_holder_failures_total", help: "Holders abandoned or blamed, by error code", kind: "counter", read: (b) =>
    Object.entries(m(b)?.holderFailures ?? {}).map(([code, value]) => ({ labels: { code }, value })) },
  { name: "dataforts_served_bytes_total", help: "Chunk bytes served to peers", kind: "counter", read: (b) => m(b)?.sender.stats().bytesServed ?? 0 },
  { name: "dataforts_served_frames_total", help: "DATA frames served to peers, by how they were written (direct: runs of PUB records in one socket write; publish: one by one)", kind: "counter", read: (b) => {
    const s = m(b)?.sender.stats()
    return [{ labels: { path: "direct" }, value: s?.framesWrittenDirect ?? 0 }, { labels: { path: "publish" }, value: (s?.framesSent ?? 0) - (s?.framesWrittenDirect ?? 0) }]
  } },
  { name: "dataforts_sender_server_wait_seconds_total", help: "Seconds the holder paused because the NATS server had not yet taken what it wrote (PING/PONG pacing)", kind: "counter", read: (b) => m(b)?.sender.stats().serverWaitSeconds ?? 0 },
  { name: "dataforts_transfers_active", help: "Outgoing transfers in flight", kind: "gauge", read: (b) => m(b)?.sender.stats().activeTransfers ?? 0 },
  { name: "dataforts_transfers_total", help: "Outgoing transfers, by result", kind: "counter", read: (b) => {
    const s = m(b)?.sender.stats()
    return [{ labels: { result: "completed" }, value: s?.transfersCompleted ?? 0 }, { labels: { result: "dropped" }, value: s?.transfersDropped ?? 0 }]
  } },
  { name: "dataforts_nodes_live", help: "Live nodes on the bus (this one included)", kind: "gauge", read: (b) => m(b)?.folds.liveNodes().length ?? 0 },
  { name: "dataforts_fold_events_total", help: "Fold events from peers, by outcome", kind: "counter", read: (b) => {
    const s = m(b)?.folds.stats
    return [{ labels: { outcome: "applied" }, value: s?.applied ?? 0 }, { labels: { outcome: "malformed" }, value: s?.malformed ?? 0 }, { labels: { outcome: "gap" }, value: s?.gaps ?? 0 }]
  } },
  { name: "dataforts_fold_publishes_denied_total", help: "Own fold facts not sent because the NATS server denies their subject (refused, or held back after a refusal)", kind: "counter", read: (b) => m(b)?.bus.publishesDenied() ?? 0 },
  { name: "dataforts_fold_syncs_total", help: "Origin snapshots restored (late joins and gaps)", kind: "counter", read: (b) => m(b)?.folds.stats.syncs ?? 0 },
  { name: "dataforts_fold_events_rejected_total", help: "Fold events refused, by fold and reason (origin-mismatch, malformed, future-epoch, new-epoch, stale-epoch, seq-jump, conflict, origin-cap, overload)", kind: "counter", read: (b) =>
    Object.entries(m(b)?.folds.stats.rejected ?? {}).flatMap(([fold, byReason]) => Object.entries(byReason).map(([reason, value]) => ({ labels: { fold, reason }, value }))) },
  { name: "dataforts_fold_entries_capped_total", help: "Holdings and heat entries dropped because their origin (or the index) was at its cap", kind: "counter", read: (b) => {
    const f = m(b)?.folds
    return [{ labels: { fold: "holders" }, value: f?.holders.state.capped ?? 0 }, { labels: { fold: "heat" }, value: f?.heat.state.capped ?? 0 }]
  } },
  { name: "dataforts_fold_syncs_deferred_total", help: "Syncs not started: the origin was backing off, or too many were in flight", kind: "counter", read: (b) => m(b)?.folds.stats.syncsDeferred ?? 0 },
  { name: "dataforts_fold_origins", help: "Origins each built-in fold keeps state for (capped)", kind: "gauge", read: (b) => {
    const f = m(b)?.folds
    return f === undefined ? [] : [f.nodes, f.holders, f.heat].map((fold) => ({ labels: { fold: fold.name }, value: fold.origins }))
  } },
  { name: "dataforts_malloc_tuned", help: "1 when malloc holds freed memory while bytes move (process-wide, glibc)", kind: "gauge", read: () => (allocatorStats.tuned ? 1 : 0) },
  { name: "dataforts_malloc_trims_total", help: "Times freed heap memory was given back after the process went quiet (process-wide)", kind: "counter", read: () => allocatorStats.trims },
  { name: "dataforts_receive_arenas_total", help: "Receive arenas by event: created, reused (lent again to a node that opened), released (an idle arena's memory given back), fallback (made without page-aligned memory, or empty) (process-wide)", kind: "counter", read: () => [
    { labels: { event: "created" }, value: arenaStats.created },
    { labels: { event: "reused" }, value: arenaStats.reused },
    { labels: { event: "released" }, value: arenaStats.discarded },
    { labels: { event: "fallback" }, value: arenaStats.fallback },
  ] },
  { name: "dataforts_blob_heat", help: "Decayed read heat of the hottest blobs (top 10)", kind: "gauge", read: (b) =>
    (m(b)?.folds.topN(10) ?? []).map((e) => ({ labels: { hash: e.hash.slice(0, 16) }, value: e.heat })) },
]

/** A Prometheus registry over one node's counters. */
export function metricsRegistry(blobs: Blobs): Registry {
  const registry = new Registry()
  for (const def of DEFS) {
    const labelNames = LABELS[def.name] ?? []
    const collect = function (this: Counter | Gauge) {
      const v = def.read(blobs)
      this.reset()
      for (const s of typeof v === "number" ? [{ value: v }] : v) {
        if (def.kind === "counter") (this as Counter).inc(s.labels ?? {}, s.value)
        else (this as Gauge).set(s.labels ?? {}, s.value)
      }
    }
    if (def.kind === "counter") new Counter({ name: def.name, help: def.help, labelNames, registers: [registry], collect })
    else new Gauge({ name: def.name, help: def.help, labelNames, registers: [registry], collect })
  }
  return registry
}

const LABELS: Record<string, string[]> = {
  dataforts_read_bytes_total: ["source"],
  dataforts_receive_arenas_total: ["event"],
  dataforts_fetches_total: ["result"],
  dataforts_holder_failures_total: ["code"],
  dataforts_transfers_total: ["result"],
  dataforts_served_frames_total: ["path"],
  dataforts_fold_events_total: ["outcome"],
  dataforts_fold_events_rejected_total: ["fold", "reason"],
  dataforts_fold_entries_capped_total: ["fold"],
  dataforts_fold_origins: ["fold"],
  dataforts_transfer_resumes_total: ["reason"],
  dataforts_blob_heat: ["hash"],
}

/** Serves `/metrics` on 127.0.0.1:`port` (0 picks one); returns the server and its port. */
export async function serveMetrics(blobs: Blobs, port: number, host = "127.0.0.1"): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const registry = metricsRegistry(blobs)
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end()
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err) => res.writeHead(500).end(String(err)),
    )
  })
  await new Promise<void>((resolve) => server.listen(port, host, resolve))
  return {
    server,
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}
