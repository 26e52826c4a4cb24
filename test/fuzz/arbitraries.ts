import fc from "fast-check"
import { type BlobKind, BlobRef } from "../../storage/format/blob-ref.ts"
import { CHUNK_MAX_BYTES } from "../../storage/format/constants.ts"
import { type DirEntry, type DirManifest, LINK_MAX_BYTES, NAME_MAX_BYTES } from "../../storage/format/dir-manifest.ts"
import type { Manifest } from "../../storage/format/manifest.ts"
import { type BatchEntry, BATCH_CHUNK_MAX_BYTES } from "../../transfer/batch.ts"
import { DATA_MAX_PAYLOAD, ERR_MESSAGE_MAX_BYTES } from "../../transfer/constants.ts"
import type { ControlMessage, HolderFrame } from "../../transfer/frames.ts"

/**
 * Valid values of every wire and storage format: what an honest encoder may be asked to
 * write. Sizes stay small by default (fast runs) with the limits themselves mixed in, since
 * off-by-ones live at the limits.
 */

const te = new TextEncoder()
const utf8Length = (s: string): number => te.encode(s).length

export const hash32 = fc.uint8Array({ minLength: 32, maxLength: 32 })
export const hashHex = hash32.map((h) => Buffer.from(h).toString("hex"))
export const u32 = fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.constantFrom(0, 1, 0x7fff_ffff, 0xffff_ffff))
export const safeNat = fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER))

/** Text a peer may legitimately send: any code point, now and then behind a byte-order mark (it is text, not a marker). */
export const text = (maxLength: number): fc.Arbitrary<string> =>
  fc.tuple(fc.boolean(), fc.string({ unit: "binary", maxLength })).map(([bom, s]) => (bom && s.length % 7 === 0 ? `\uFEFF${s}` : s))

export const blobRef: fc.Arbitrary<BlobRef> = fc
  .tuple(fc.constantFrom<BlobKind>("chunk", "manifest", "dir"), safeNat, hash32)
  .map(([kind, size, hash]) => BlobRef.of(kind, size, hash))

export const manifest: fc.Arbitrary<Manifest> = fc
  .array(fc.record({ hash: hash32, length: fc.oneof(fc.integer({ min: 1, max: CHUNK_MAX_BYTES }), fc.constantFrom(1, CHUNK_MAX_BYTES)) }), {
    minLength: 2,
    maxLength: 12,
  })
  .map((entries) => ({ size: entries.reduce((s, e) => s + e.length, 0), entries }))

const nameOk = (n: string): boolean =>
  n.length > 0 && n !== "." && n !== ".." && !/[/\\\0]/.test(n) && utf8Length(n) <= NAME_MAX_BYTES
const dirName = fc.oneof(
  { weight: 4, arbitrary: text(24) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom("a", "...", " ", "x".repeat(NAME_MAX_BYTES), "é".repeat(NAME_MAX_BYTES >> 1)) },
).filter(nameOk)
const mode = fc.oneof(fc.integer({ min: 0, max: 0o7777 }), fc.constantFrom(0o644, 0o755, 0o7777, 0))
const linkTarget = fc
  .oneof({ weight: 20, arbitrary: text(40) }, { weight: 1, arbitrary: fc.constant("t".repeat(LINK_MAX_BYTES)) })
  .filter((t) => t.length > 0 && !t.includes("\0") && utf8Length(t) <= LINK_MAX_BYTES)

const dirEntry = (name: string): fc.Arbitrary<DirEntry> =>
  fc.oneof(
    fc.tuple(mode, blobRef.filter((r) => r.kind !== "dir")).map(([m, ref]): DirEntry => ({ name, kind: "file", mode: m, ref })),
    fc.tuple(mode, fc.tuple(safeNat, hash32)).map(([m, [size, h]]): DirEntry => ({ name, kind: "dir", mode: m, ref: BlobRef.of("dir", size, h) })),
    fc.tuple(mode, linkTarget).map(([m, target]): DirEntry => ({ name, kind: "symlink", mode: m, target })),
  )

const byNameBytes = (a: DirEntry, b: DirEntry): number => Buffer.compare(Buffer.from(a.name, "utf8"), Buffer.from(b.name, "utf8"))

/** Directory manifests with unique names, in the order the decoder gives them back (sorted by name bytes). */
export const dirManifest: fc.Arbitrary<DirManifest> = fc
  .uniqueArray(dirName, { maxLength: 6, selector: (n) => Buffer.from(n, "utf8").toString("hex") })
  .chain((names): fc.Arbitrary<DirEntry[]> => (names.length === 0 ? fc.constant([]) : fc.tuple(...names.map(dirEntry))))
  .map((entries): DirManifest => ({ entries: [...entries].sort(byNameBytes) }))

const payload = fc.oneof(
  { weight: 40, arbitrary: fc.uint8Array({ maxLength: 48 }) },
  { weight: 1, arbitrary: fc.constantFrom(new Uint8Array(DATA_MAX_PAYLOAD).fill(0xab), new Uint8Array(0)) },
)
const errMessage = fc.oneof({ weight: 20, arbitrary: text(60) }, { weight: 1, arbitrary: fc.constant("m".repeat(ERR_MESSAGE_MAX_BYTES)) }).filter((m) => utf8Length(m) <= ERR_MESSAGE_MAX_BYTES)

export const holderFrame: fc.Arbitrary<HolderFrame> = fc.oneof(
  fc.record({ type: fc.constant("data" as const), offset: u32, payload }),
  fc.record({ type: fc.constant("head" as const), length: u32 }),
  fc.record({ type: fc.constant("fin" as const), length: u32, hash: hash32 }),
  fc.record({ type: fc.constant("err" as const), code: fc.integer({ min: 0, max: 255 }), message: errMessage }),
)

const subject = fc.oneof(fc.constantFrom("_INBOX.abc.1", "dataforts.data.x"), text(30)).filter((s) => s.length > 0)

export const controlMessage: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.record({ type: fc.constant("req" as const), hash: hash32, offset: u32, credit: u32, maxLength: u32 }),
  fc.record({ type: fc.constant("credit" as const), credit: u32, subject }),
  fc.record({ type: fc.constant("cancel" as const), subject }),
)

export const batchRequest: fc.Arbitrary<Uint8Array[]> = fc.oneof(
  { weight: 40, arbitrary: fc.array(hash32, { maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constant(Array.from({ length: 1024 }, (_, i) => new Uint8Array(32).fill(i & 0xff))) },
)

const batchEntry = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((bytes): BatchEntry => ({ status: 0, bytes })),
  fc.constantFrom<BatchEntry>({ status: 1 }, { status: 2 }, { status: 3 }),
)
/** Small replies, now and then one carrying a chunk of the largest size a batch takes (copies of 64 KiB are slow to fuzz). */
export const batchReply: fc.Arbitrary<BatchEntry[]> = fc.oneof(
  { weight: 40, arbitrary: fc.array(batchEntry, { maxLength: 8 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.array(batchEntry, { maxLength: 3 }), fc.nat())
      .map(([entries, at]) => entries.toSpliced(at % (entries.length + 1), 0, { status: 0, bytes: new Uint8Array(BATCH_CHUNK_MAX_BYTES).fill(1) })),
  },
)

// ---- folds: JSON messages ----

const jsonText = (maxLength: number) => fc.string({ unit: "binary", maxLength })
/** An epoch as nodes make them (µs since 1970 plus noise) or a small one (tests). */
const epoch = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1_700_000_000_000_000, max: 2_000_000_000_000_000 }), fc.constant(0))
const seq = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER))
const count = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER))

export const envelope = fc.record({ origin: jsonText(12), epoch, seq, data: fc.jsonValue({ maxDepth: 2 }) })

export const syncRequest = fc.record({ fold: jsonText(12), page: count, id: jsonText(12) }, { requiredKeys: ["fold", "page"] })

export const pageHeader = fc.oneof(
  fc.record({
    fold: jsonText(12),
    origin: jsonText(12),
    epoch,
    seq: count,
    id: jsonText(12),
    page: count,
    pages: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER)),
  }),
  fc.record({ error: fc.constantFrom("unknown-fold" as const, "expired" as const, "bad-request" as const) }),
)

export const page = fc.record({ header: pageHeader, body: fc.uint8Array({ maxLength: 80 }) })

export const holderEntry = fc.record({ hash: hashHex, kind: fc.constantFrom("blob" as const, "chunk" as const) })
export const holdersPage = fc.array(holderEntry, { maxLength: 8 })
export const holdersDelta = fc.record(
  { add: fc.array(hashHex, { maxLength: 4 }), remove: fc.array(hashHex, { maxLength: 4 }), kind: fc.constantFrom("blob" as const, "chunk" as const) },
  { requiredKeys: ["add", "remove"] },
)

/** Heat is a positive finite number (a decayed read count: fractions are normal). */
const heat = fc.oneof(fc.double({ min: Number.MIN_VALUE, max: 1e12, noNaN: true }), fc.constantFrom(1, 0.5, Number.MAX_VALUE, Number.MIN_VALUE))
export const heatEntry = fc.tuple(hashHex, heat)
export const heatPage = fc.array(heatEntry, { maxLength: 6 })
export const heatDelta = fc.record({ reads: heatPage })

const dictKey = fc.oneof(jsonText(8), fc.constantFrom("holders", "heat", "nodes", "__proto__", "constructor"))
export const heartbeat = fc.record(
  {
    zone: jsonText(8),
    intervalMs: fc.oneof(fc.integer({ min: 1, max: 60_000 }), fc.double({ min: Number.MIN_VALUE, max: 1e9, noNaN: true })),
    watermarks: fc
      .array(fc.tuple(dictKey, count), { maxLength: 4 })
      .map((pairs) => {
        // own properties even for "__proto__", as JSON.parse makes them
        const o: Record<string, number> = {}
        for (const [k, v] of pairs) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
        return o
      }),
  },
  { requiredKeys: ["intervalMs", "watermarks"] },
)
export const nodesPage = fc.array(heartbeat, { maxLength: 3 })
