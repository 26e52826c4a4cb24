/**
 * The small-chunk batch exchange: one request/reply carries many small chunks, so a tree of
 * thousands of tiny files costs a few dozen round trips instead of one credit-window stream
 * each. Replies stay under BATCH_REPLY_MAX_BYTES (well inside NATS's default 1 MiB payload);
 * what does not fit is marked and asked for again. Every chunk is verified by the receiver.
 *
 *   request  (on `<prefix>.batch.<node>`): version u8 | count u16 BE | count × hash[32]
 *   reply:   version u8 | count u16 BE | count × (status u8 | [length u32 BE | bytes] if status = 0)
 *   status:  0 data, 1 not held, 2 over the reply budget (ask again), 3 larger than BATCH_CHUNK_MAX_BYTES
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core"
import { ProtocolError } from "../storage/format/errors.ts"
import type { HashBackend } from "../storage/format/hasher.ts"
import { fromHex, toHex } from "../storage/format/hex.ts"
import type { ChunkSource } from "./sender.ts"

export const BATCH_VERSION = 1
/** Most hashes one request may name. */
export const BATCH_MAX_COUNT = 1024
/** Largest chunk a batch carries; bigger ones use the streaming transfer. */
export const BATCH_CHUNK_MAX_BYTES = 64 * 1024
/** A reply's payload budget. */
export const BATCH_REPLY_MAX_BYTES = 512 * 1024

export const BatchStatus = { data: 0, notHeld: 1, overBudget: 2, tooLarge: 3 } as const

export function batchSubject(prefix: string, node: string): string {
  return `${prefix}.batch.${node}`
}

export function encodeBatchRequest(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length > BATCH_MAX_COUNT) throw new RangeError(`at most ${BATCH_MAX_COUNT} hashes per batch`)
  if (hashes.some((h) => h.length !== 32)) throw new RangeError("a batch names 32-byte hashes")
  const out = new Uint8Array(3 + 32 * hashes.length)
  out[0] = BATCH_VERSION
  new DataView(out.buffer).setUint16(1, hashes.length)
  hashes.forEach((h, i) => out.set(h, 3 + 32 * i))
  return out
}

export function decodeBatchRequest(b: Uint8Array): Uint8Array[] {
  if (b.length < 3 || b[0] !== BATCH_VERSION) throw new ProtocolError("bad batch request header")
  const count = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(1)
  if (count > BATCH_MAX_COUNT || b.length !== 3 + 32 * count) throw new ProtocolError("bad batch request length")
  return Array.from({ length: count }, (_, i) => b.subarray(3 + 32 * i, 35 + 32 * i))
}

export type BatchEntry = { status: 0; bytes: Uint8Array } | { status: 1 | 2 | 3 }

export function encodeBatchReply(entries: readonly BatchEntry[]): Uint8Array {
  // what the decoder refuses is not written: a u16 count would silently wrap past 65535
  if (entries.length > BATCH_MAX_COUNT) throw new RangeError(`at most ${BATCH_MAX_COUNT} entries per batch reply`)
  let size = 3
  for (const e of entries) {
    if (e.status === 0 && e.bytes.length > BATCH_CHUNK_MAX_BYTES) throw new RangeError(`batch entry of ${e.bytes.length} bytes > ${BATCH_CHUNK_MAX_BYTES}`)
    size += 1 + (e.status === 0 ? 4 + e.bytes.length : 0)
  }
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  out[0] = BATCH_VERSION
  view.setUint16(1, entries.length)
  let off = 3
  for (const e of entries) {
    out[off++] = e.status
    if (e.status === 0) {
      view.setUint32(off, e.bytes.length)
      out.set(e.bytes, off + 4)
      off += 4 + e.bytes.length
    }
  }
  return out
}

export function decodeBatchReply(b: Uint8Array, expected: number): BatchEntry[] {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength)
  if (b.length < 3 || b[0] !== BATCH_VERSION || view.getUint16(1) !== expected) throw new ProtocolError("bad batch reply header")
  const out: BatchEntry[] = []
  let off = 3
  for (let i = 0; i < expected; i++) {
    if (off >= b.length) throw new ProtocolError("truncated batch reply")
    const status = b[off++]!
    if (status === 0) {
      if (off + 4 > b.length) throw new ProtocolError("truncated batch reply")
      const len = view.getUint32(off)
      if (len > BATCH_CHUNK_MAX_BYTES || off + 4 + len > b.length) throw new ProtocolError("batch entry over its limits")
      out.push({ status: 0, bytes: b.slice(off + 4, off + 4 + len) })
      off += 4 + len
    } else if (status === 1 || status === 2 || status === 3) out.push({ status })
    else throw new ProtocolError(`unknown batch status ${status}`)
  }
  if (off !== b.length) throw new ProtocolError("trailing bytes in batch reply")
  return out
}

/** Serves batch requests for this node from `source`. */
export function serveBatches(nc: NatsConnection, options: { node: string; source: ChunkSource; prefix?: string }): { served(): number; close(): void } {
  let served = 0
  const sub: Subscription = nc.subscribe(batchSubject(options.prefix ?? "dataforts", options.node), {
    callback: (err, msg) => {
      if (err === null) void answer(msg)
    },
  })
  async function answer(msg: Msg): Promise<void> {
    let hashes: Uint8Array[]
    try {
      hashes = decodeBatchRequest(msg.data)
    } catch {
      return // malformed: no reply; the requester times out and uses the stream path
    }
    const entries: BatchEntry[] = []
    let budget = BATCH_REPLY_MAX_BYTES
    for (const hash of hashes) {
      const reader = await options.source.open(toHex(hash)).catch(() => undefined)
      if (reader === undefined) entries.push({ status: 1 })
      else if (reader.length > BATCH_CHUNK_MAX_BYTES) entries.push({ status: 3 })
      else if (reader.length + 5 > budget) entries.push({ status: 2 })
      else {
        const bytes = await reader.read(0, reader.length).catch(() => undefined)
        if (bytes === undefined) entries.push({ status: 1 })
        else {
          budget -= bytes.length + 5
          served += bytes.length
          entries.push({ status: 0, bytes })
        }
      }
      await reader?.close().catch(() => {})
    }
    try {
      msg.respond(encodeBatchReply(entries))
    } catch {
      // connection closing
    }
  }
  return { served: () => served, close: () => sub.unsubscribe() }
}

/**
 * Asks `holder` for many small chunks at once. Returns the verified ones by hex; chunks the
 * holder lacks, could not fit, or sent corrupt are simply absent (the caller falls back).
 * `corrupt` counts chunks that failed verification (the holder lied).
 */
export async function fetchBatch(
  nc: NatsConnection,
  options: { holder: string; hashes: readonly string[]; hashBackend: HashBackend; prefix?: string; timeoutMs?: number },
): Promise<{ chunks: Map<string, Uint8Array>; corrupt: number }> {
  const chunks = new Map<string, Uint8Array>()
  let corrupt = 0
  let pending = [...options.hashes]
  while (pending.length > 0) {
    const ask = pending.slice(0, BATCH_MAX_COUNT)
    const reply = await nc.request(batchSubject(options.prefix ?? "dataforts", options.holder), encodeBatchRequest(ask.map((h) => fromHex(h)!)), {
      timeout: options.timeoutMs ?? 5000,
    })
    const entries = decodeBatchReply(reply.data, ask.length)
    const again: string[] = []
    entries.forEach((e, i) => {
      const hex = ask[i]!
      if (e.status === 0) {
        if (toHex(options.hashBackend.hash(e.bytes)) === hex) chunks.set(hex, e.bytes)
        else corrupt++
      } else if (e.status === 2) again.push(hex)
    })
    // progress is guaranteed: a reply holds at least one entry unless every one is too large or missing
    if (again.length === ask.length) break
    pending = [...again, ...pending.slice(ask.length)]
  }
  return { chunks, corrupt }
}
