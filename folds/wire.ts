import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import type { FoldSpec } from "./fold.ts"

/**
 * Subjects and payloads of the fold protocol, in one place (STYLE.md point 4):
 *
 * - `<prefix>.fold.<fold>.<origin>`  event  JSON `{ origin, epoch, seq, data }`
 * - `<prefix>.sync.<origin>`         request JSON `{ fold, page, id? }`, reply: one page frame
 * - `<prefix>.ping.<node>`           request/reply, empty payloads (RTT)
 *
 * A page frame is `u32be headerLength | header JSON | body`, the body being the fold's
 * page codec (JSON entries by default, packed binary for holders). Pages stay under
 * `MAX_PAGE_BYTES` so nothing comes near the server's 1 MiB max_payload.
 */

/** Default subject prefix. */
export const DEFAULT_PREFIX = "dataforts"

/** Largest sync reply we send (header included): half of NATS' default max_payload. */
export const MAX_PAGE_BYTES = 512 * 1024

/** The subjects one deployment (prefix) uses. */
export const subjects = (prefix: string) => ({
  event: (fold: string, origin: string) => `${prefix}.fold.${fold}.${origin}`,
  events: (fold: string) => `${prefix}.fold.${fold}.*`,
  sync: (origin: string) => `${prefix}.sync.${origin}`,
  ping: (node: string) => `${prefix}.ping.${node}`,
})

const Seq = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** Nodes make epochs from the clock (µs, a safe integer); a fraction, 1e400 or an unsafe integer is not one. */
const Epoch = Count

/** Event envelope; `data` is decoded afterwards with the fold's own Schema. */
export const Envelope = Schema.Struct({
  origin: Schema.String,
  epoch: Epoch,
  seq: Seq,
  data: Schema.Unknown,
})

/** Sync request: page 0 captures a snapshot (`id` names it for the following pages). */
export const SyncRequest = Schema.Struct({
  fold: Schema.String,
  page: Count,
  id: Schema.optional(Schema.String),
})
/** Decoded sync request. */
export type SyncRequest = typeof SyncRequest.Type

/** Header of one sync reply page, or an error code. */
export const PageHeader = Schema.Union([
  Schema.Struct({
    fold: Schema.String,
    origin: Schema.String,
    epoch: Epoch,
    seq: Count,
    id: Schema.String,
    page: Count,
    pages: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  }),
  Schema.Struct({ error: Schema.Literals(["unknown-fold", "expired", "bad-request"]) }),
])
/** Decoded page header. */
export type PageHeader = typeof PageHeader.Type

/** Decodes at a trust boundary; undefined when the value does not match (the caller counts it). */
export function decodeOr<A>(schema: Schema.Codec<A, unknown>, u: unknown): A | undefined {
  const r = Schema.decodeUnknownExit(schema)(u)
  return Exit.isSuccess(r) ? r.value : undefined
}

const enc = new TextEncoder()
const dec = new TextDecoder("utf-8", { fatal: true })

/** JSON to bytes. */
export const jsonBytes = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v))

/** Bytes to JSON, or undefined for anything unparseable. */
export function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(bytes))
  } catch {
    return undefined
  }
}

/** Builds one page frame. */
export function encodePage(header: PageHeader, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = jsonBytes(header)
  const out = new Uint8Array(4 + h.length + body.length)
  new DataView(out.buffer).setUint32(0, h.length)
  out.set(h, 4)
  out.set(body, 4 + h.length)
  return out
}

/** Splits a page frame; undefined when the frame or its header is malformed. */
export function decodePage(frame: Uint8Array): { header: PageHeader; body: Uint8Array } | undefined {
  if (frame.length < 4) return undefined
  const len = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0)
  if (4 + len > frame.length) return undefined
  const header = decodeOr(PageHeader, parseJson(frame.subarray(4, 4 + len)))
  return header === undefined ? undefined : { header, body: frame.subarray(4 + len) }
}

/** Encodes entries with the fold's page codec, or as a JSON array. */
export function encodeEntries<E>(spec: FoldSpec<unknown, unknown, E>, entries: ReadonlyArray<E>): Uint8Array {
  return spec.pageCodec !== undefined ? spec.pageCodec.encode(entries) : jsonBytes(entries)
}

/** Decodes a page body at the trust boundary; undefined when malformed. */
export function decodeEntries<E>(spec: FoldSpec<unknown, unknown, E>, body: Uint8Array): E[] | undefined {
  if (spec.pageCodec !== undefined) return spec.pageCodec.decode(body)
  return decodeOr(Schema.Array(spec.entry), parseJson(body)) as E[] | undefined
}

/**
 * Splits entries into encoded page bodies of at most `maxBytes` each, halving a slice
 * until it fits (entries are small, so this converges in a few steps).
 */
export function paginate<E>(spec: FoldSpec<unknown, unknown, E>, entries: ReadonlyArray<E>, maxBytes: number): Uint8Array[] {
  const out: Uint8Array[] = []
  const split = (from: number, to: number): void => {
    const body = encodeEntries(spec, entries.slice(from, to))
    if (body.length <= maxBytes || to - from <= 1) out.push(body)
    else {
      const mid = from + Math.ceil((to - from) / 2)
      split(from, mid)
      split(mid, to)
    }
  }
  if (entries.length === 0) out.push(encodeEntries(spec, []))
  else split(0, entries.length)
  return out
}
