import fc from "fast-check"
import { BlobRef } from "../../storage/format/blob-ref.ts"
import { type DirManifest, decodeDirManifest, encodeDirManifest } from "../../storage/format/dir-manifest.ts"
import type { ErrorCode } from "../../storage/format/errors.ts"
import { decodeManifest, encodeManifest, type Manifest } from "../../storage/format/manifest.ts"
import { type BatchEntry, decodeBatchReply, decodeBatchRequest, encodeBatchReply, encodeBatchRequest } from "../../transfer/batch.ts"
import {
  type ControlMessage,
  decodeControl,
  decodeHolderFrame,
  encodeCancel,
  encodeCredit,
  encodeData,
  encodeErr,
  encodeFin,
  encodeHead,
  encodeReq,
  type HolderFrame,
} from "../../transfer/frames.ts"
import type { FoldSpec } from "../../folds/fold.ts"
import { heatFold } from "../../folds/heat.ts"
import { type HolderEntry, holdersFold } from "../../folds/holders.ts"
import { nodesFold } from "../../folds/nodes.ts"
import { decodeEntries, decodeOr, decodePage, encodeEntries, encodePage, Envelope, jsonBytes, PageHeader, parseJson, SyncRequest } from "../../folds/wire.ts"
import * as A from "./arbitraries.ts"
import { mutatedBytes, mutatedJson } from "./mutate.ts"

/**
 * Every decoder that reads bytes from a peer or from disk, as a fuzz target. `canonical`
 * says what "the decoder accepts exactly what the encoder writes" means for it: "bytes" —
 * an accepted input is byte-identical to the encoding of what it decoded to; "value" (JSON
 * and frames around JSON) — the decoded value re-encodes and re-decodes to an equal value.
 */
export interface Target<V> {
  readonly name: string
  readonly canonical: "bytes" | "value"
  /** Codes the decoder may refuse with; "MALFORMED" stands for a fold decoder's undefined. */
  readonly codes: readonly (ErrorCode | "MALFORMED")[]
  /** Values an honest encoder is asked to write. */
  readonly valid: fc.Arbitrary<V>
  /** Untrusted inputs: random bytes, mutated encodings and, for JSON, mutated documents. */
  readonly inputs: fc.Arbitrary<Uint8Array>
  encode(v: V): Uint8Array
  /** Returns the value, throws a DatafortsError, or (fold decoders) returns undefined. */
  decode(b: Uint8Array): V | undefined
  /** A comparable form of a value (refs as strings, opaque JSON as its text). */
  view(v: V): unknown
  /** Rules an accepted value must keep beyond its re-encoding (ints where ints are meant); a reason when broken. */
  invariant?(v: V): string | undefined
}

export type AnyTarget = Target<any>

const te = new TextEncoder()
const td = new TextDecoder()

/** Random bytes, bytes behind a valid prefix, and mutated encodings (most of the weight: near misses find bugs). */
function binaryInputs<V>(valid: fc.Arbitrary<V>, encode: (v: V) => Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 96 }) },
    {
      weight: 1,
      arbitrary: fc.tuple(valid, fc.nat(), fc.uint8Array({ maxLength: 64 })).map(([v, cut, tail]) => {
        const b = encode(v)
        return Buffer.concat([b.subarray(0, cut % (b.length + 1)), tail])
      }),
    },
    { weight: 8, arbitrary: mutatedBytes(valid, encode) },
  )
}

function jsonInputs<V>(valid: fc.Arbitrary<V>, encode: (v: V) => Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((j) => te.encode(JSON.stringify(j))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }) },
    { weight: 3, arbitrary: mutatedBytes(valid, encode) },
    { weight: 8, arbitrary: mutatedJson(valid) },
  )
}

const isSafeNat = (n: unknown, min = 0): boolean => typeof n === "number" && Number.isSafeInteger(n) && n >= min

/** A reason when any number inside `v` is not finite (JSON would write it as null). */
function finiteNumbers(v: unknown): string | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? undefined : `number ${v}`
  if (Array.isArray(v)) {
    for (const x of v) {
      const why = finiteNumbers(x)
      if (why !== undefined) return why
    }
  } else if (v !== null && typeof v === "object") {
    for (const x of Object.values(v)) {
      const why = finiteNumbers(x)
      if (why !== undefined) return why
    }
  }
  return undefined
}

function binary<V>(t: Omit<Target<V>, "inputs" | "canonical"> & { inputs?: fc.Arbitrary<Uint8Array> }): Target<V> {
  return { canonical: "bytes", inputs: t.inputs ?? binaryInputs(t.valid, t.encode), ...t }
}

function json<V>(t: Omit<Target<V>, "inputs" | "canonical" | "codes" | "encode" | "view"> & Partial<Pick<Target<V>, "view">>): Target<V> {
  const encode = (v: V): Uint8Array => jsonBytes(v)
  const view = t.view ?? ((v: V) => v)
  // numbers in the comparable form only: opaque parts (an envelope's data) are the next decoder's
  const invariant = (v: V): string | undefined => finiteNumbers(view(v)) ?? t.invariant?.(v)
  return { canonical: "value", codes: ["MALFORMED"], encode, inputs: jsonInputs(t.valid, encode), ...t, view, invariant }
}

// ---- storage/format ----

const refView = (r: BlobRef): string => r.toString()

export const blobRefString = binary<BlobRef>({
  name: "blob-ref.string",
  codes: ["BAD_REF"],
  valid: A.blobRef,
  encode: (r) => te.encode(r.toString()),
  decode: (b) => BlobRef.parse(td.decode(b)),
  view: refView,
})

export const blobRefBinary = binary<BlobRef>({
  name: "blob-ref.binary",
  codes: ["BAD_REF"],
  valid: A.blobRef,
  encode: (r) => r.toBytes(),
  decode: (b) => BlobRef.fromBytes(b),
  view: refView,
})

export const manifestTarget = binary<Manifest>({
  name: "manifest",
  codes: ["BAD_MANIFEST"],
  valid: A.manifest,
  encode: encodeManifest,
  decode: (b) => decodeManifest(b),
  view: (m) => m,
})

export const dirManifestTarget = binary<DirManifest>({
  name: "dir-manifest",
  codes: ["BAD_MANIFEST", "UNSAFE_PATH", "TOO_LARGE", "BAD_REF"],
  valid: A.dirManifest,
  encode: encodeDirManifest,
  decode: decodeDirManifest,
  view: (d) => d.entries.map((e) => (e.kind === "symlink" ? e : { ...e, ref: e.ref.toString() })),
})

// ---- transfer ----

function encodeHolderFrame(f: HolderFrame): Uint8Array {
  switch (f.type) {
    case "data":
      return encodeData(f.offset, f.payload)
    case "head":
      return encodeHead(f.length)
    case "fin":
      return encodeFin(f.length, f.hash)
    case "err":
      return encodeErr(f.code, f.message)
  }
}

function encodeControl(m: ControlMessage): Uint8Array {
  switch (m.type) {
    case "req":
      return encodeReq(m.hash, m.offset, m.credit, m.maxLength)
    case "credit":
      return encodeCredit(m.credit, m.subject)
    case "cancel":
      return encodeCancel(m.subject)
  }
}

export const holderFrameTarget = binary<HolderFrame>({
  name: "transfer.holder-frame",
  codes: ["PROTOCOL"],
  valid: A.holderFrame,
  encode: encodeHolderFrame,
  decode: decodeHolderFrame,
  view: (f) => f,
})

export const controlTarget = binary<ControlMessage>({
  name: "transfer.control",
  codes: ["PROTOCOL"],
  valid: A.controlMessage,
  encode: encodeControl,
  decode: decodeControl,
  view: (m) => m,
})

export const batchRequestTarget = binary<Uint8Array[]>({
  name: "transfer.batch-request",
  codes: ["PROTOCOL"],
  valid: A.batchRequest,
  encode: encodeBatchRequest,
  decode: decodeBatchRequest,
  view: (h) => h,
})

/** The requester knows how many entries it asked for; here the count in the header stands in (a mismatch is its own test). */
export const batchReplyTarget = binary<BatchEntry[]>({
  name: "transfer.batch-reply",
  codes: ["PROTOCOL"],
  valid: A.batchReply,
  encode: encodeBatchReply,
  decode: (b) => decodeBatchReply(b, b.length >= 3 ? (b[1]! << 8) | b[2]! : 0),
  view: (e) => e,
})

// ---- folds ----

type Spec<E> = FoldSpec<unknown, unknown, E>
const holdersSpec = holdersFold.spec as unknown as Spec<HolderEntry>
const heatSpec = heatFold().spec as unknown as Spec<readonly [string, number]>
const nodesSpec = nodesFold().spec as unknown as Spec<unknown>

const intsAt = (o: Record<string, unknown>, keys: readonly [string, number][]): string | undefined => {
  for (const [k, min] of keys) if (k in o && !isSafeNat(o[k], min)) return `${k} = ${String(o[k])}`
  return undefined
}

export const envelopeTarget = json<typeof Envelope.Type>({
  name: "folds.envelope",
  valid: A.envelope,
  decode: (b) => decodeOr(Envelope, parseJson(b)),
  // the data is opaque here (the fold's own Schema decodes it: the *-delta targets)
  view: (e) => ({ ...e, data: JSON.stringify(e.data) }),
  invariant: (e) => intsAt(e, [["epoch", 0], ["seq", 1]]),
})

export const syncRequestTarget = json<SyncRequest>({
  name: "folds.sync-request",
  valid: A.syncRequest,
  decode: (b) => decodeOr(SyncRequest, parseJson(b)),
  invariant: (r) => intsAt(r, [["page", 0]]),
})

const headerInts: [string, number][] = [["epoch", 0], ["seq", 0], ["page", 0], ["pages", 1]]

export const pageHeaderTarget = json<PageHeader>({
  name: "folds.page-header",
  valid: A.pageHeader,
  decode: (b) => decodeOr(PageHeader, parseJson(b)),
  invariant: (h) => intsAt(h, headerInts),
})

type Page = { header: PageHeader; body: Uint8Array }
const encodePageOf = (p: Page): Uint8Array => encodePage(p.header, p.body)

export const pageTarget: Target<Page> = {
  name: "folds.page",
  canonical: "value",
  codes: ["MALFORMED"],
  valid: A.page,
  encode: encodePageOf,
  decode: decodePage,
  view: (p) => p,
  invariant: (p) => finiteNumbers(p.header) ?? intsAt(p.header, headerInts),
  inputs: fc.oneof(
    { weight: 1, arbitrary: binaryInputs(A.page, encodePageOf) },
    // a well-framed page whose header JSON is mutated
    { weight: 1, arbitrary: fc.tuple(mutatedJson(A.pageHeader), fc.uint8Array({ maxLength: 16 })).map(([h, body]) => frame(h, body)) },
  ),
}

function frame(header: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + header.length + body.length)
  new DataView(out.buffer).setUint32(0, header.length)
  out.set(header, 4)
  out.set(body, 4 + header.length)
  return out
}

export const holdersPageTarget = binary<HolderEntry[]>({
  name: "folds.holders-page",
  codes: ["MALFORMED"],
  valid: A.holdersPage,
  encode: (e) => encodeEntries(holdersSpec, e),
  decode: (b) => decodeEntries(holdersSpec, b),
  view: (e) => e,
})

export const heatPageTarget = json<(readonly [string, number])[]>({
  name: "folds.heat-page",
  valid: A.heatPage,
  decode: (b) => decodeEntries(heatSpec, b),
})

export const nodesPageTarget = json<unknown[]>({
  name: "folds.nodes-page",
  valid: A.nodesPage,
  decode: (b) => decodeEntries(nodesSpec, b),
  invariant: (hbs) => hbs.map(heartbeatRules).find((w) => w !== undefined),
})

function heartbeatRules(hb: unknown): string | undefined {
  const wm = (hb as { watermarks: Record<string, unknown> }).watermarks
  for (const [k, v] of Object.entries(wm)) if (!isSafeNat(v)) return `watermark ${k} = ${String(v)}`
  return undefined
}

const eventData = <D>(spec: Spec<unknown>, b: Uint8Array): D | undefined => decodeOr(spec.data, parseJson(b)) as D | undefined

export const holdersDeltaTarget = json<unknown>({
  name: "folds.holders-delta",
  valid: A.holdersDelta,
  decode: (b) => eventData(holdersSpec as Spec<unknown>, b),
})

export const heatDeltaTarget = json<unknown>({
  name: "folds.heat-delta",
  valid: A.heatDelta,
  decode: (b) => eventData(heatSpec as Spec<unknown>, b),
})

export const heartbeatTarget = json<unknown>({
  name: "folds.heartbeat",
  valid: A.heartbeat,
  decode: (b) => eventData(nodesSpec, b),
  invariant: heartbeatRules,
})

/** Every target, in the order the runner reports them. */
export const TARGETS: readonly AnyTarget[] = [
  blobRefString,
  blobRefBinary,
  manifestTarget,
  dirManifestTarget,
  holderFrameTarget,
  controlTarget,
  batchRequestTarget,
  batchReplyTarget,
  envelopeTarget,
  syncRequestTarget,
  pageHeaderTarget,
  pageTarget,
  holdersPageTarget,
  heatPageTarget,
  nodesPageTarget,
  holdersDeltaTarget,
  heatDeltaTarget,
  heartbeatTarget,
]

/** One fuzz case: an honest value (round trip) or untrusted bytes (safety, canonical form). */
export type FuzzCase<V> = { readonly valid: V } | { readonly bytes: Uint8Array }

export function casesOf<V>(t: Target<V>): fc.Arbitrary<FuzzCase<V>> {
  return fc.oneof(
    { weight: 1, arbitrary: t.valid.map((valid) => ({ valid })) },
    { weight: 5, arbitrary: t.inputs.map((bytes) => ({ bytes })) },
  )
}
