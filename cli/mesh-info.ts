import { setTimeout as sleep } from "node:timers/promises"
import { BlobRef, NoHolderError } from "../plugin/index.ts"
import type { Session } from "./mesh-session.ts"

export interface InfoContext {
  readonly signal: AbortSignal
  /** How long to listen before answering: the folds fill from heartbeats (about 1 s each). */
  readonly waitMs: number
  print(text: string, obj: unknown): void
}

interface NodeRow {
  node: string
  zone: string | null
  rttMs: number | null
  self: boolean
}

function rowOf(s: Session, node: string): NodeRow {
  const folds = s.blobs.mesh!.folds
  const rtt = folds.rttOf(node)
  return { node, zone: folds.zoneOf(node) ?? null, rttMs: rtt === undefined ? null : Math.round(rtt * 100) / 100, self: node === s.node }
}

function table(rows: NodeRow[]): string {
  const width = Math.max(4, ...rows.map((r) => r.node.length))
  const zoneWidth = Math.max(4, ...rows.map((r) => (r.zone ?? "-").length))
  const head = `${"NODE".padEnd(width)}  ${"ZONE".padEnd(zoneWidth)}  RTT`
  const lines = rows.map((r) => `${r.node.padEnd(width)}  ${(r.zone ?? "-").padEnd(zoneWidth)}  ${r.self ? "(this node)" : r.rttMs === null ? "?" : `${r.rttMs.toFixed(2)} ms`}`)
  return [head, ...lines].join("\n")
}

async function listen(ctx: InfoContext): Promise<void> {
  await sleep(ctx.waitMs, undefined, { signal: ctx.signal }).catch(() => {})
}

/** `nodes`: live nodes with zone and RTT, after listening for a couple of heartbeats. */
export async function listNodes(s: Session, ctx: InfoContext): Promise<void> {
  await listen(ctx)
  const rows = s.blobs.mesh!.folds.liveNodes().map((n) => rowOf(s, n))
  ctx.print(table(rows), { nodes: rows })
}

/** `holders <ref>`: live nodes holding a ref, nearest first (same zone, then RTT). NO_HOLDER when none. */
export async function listHolders(s: Session, refText: string, ctx: InfoContext): Promise<void> {
  const ref = BlobRef.parse(refText)
  await listen(ctx)
  const holders = s.blobs.mesh!.folds.nearestHolders(ref.hex)
  const rows = holders.map((n) => rowOf(s, n))
  if ((await s.blobs.store.hasBlob(ref)) === true) rows.unshift(rowOf(s, s.node))
  if (rows.length === 0) throw new NoHolderError(ref.hex, "no live node advertises it")
  ctx.print(table(rows), { ref: ref.toString(), holders: rows })
}
