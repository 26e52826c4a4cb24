import * as Schema from "effect/Schema"
import { defineFold, type FoldDefinition } from "./fold.ts"

/**
 * `holders`: node → held hashes. Whole blobs are advertised by their ref hash, partial
 * holdings chunk by chunk (`kind: "chunk"`), in batched `{ add, remove }` deltas.
 *
 * Memory is the constraint (DESIGN.md §4: near 100 bytes per (hash, holder)): node ids are
 * interned to small ints, a hash is keyed by its 32 raw bytes packed into a one-byte string
 * (half the size of its hex), and the holders of a hash are one Smi (`node * 2 + isChunk`)
 * or, rarely, a small array of them.
 */

/** Whole blob (ref hash) or one chunk of a partially held blob. */
export type HoldingKind = "blob" | "chunk"

/** A 64-character lower-case hex BLAKE3-256 digest, checked at the trust boundary. */
export const HashHex = Schema.String.check(Schema.isPattern(/^[0-9a-f]{64}$/))

/** One `holders` event: hashes the origin now holds (`add`, all of `kind`) and no longer holds. */
export const HoldersDelta = Schema.Struct({
  add: Schema.Array(HashHex),
  remove: Schema.Array(HashHex),
  kind: Schema.optional(Schema.Literals(["blob", "chunk"])),
})
/** Decoded `holders` event payload. */
export type HoldersDelta = typeof HoldersDelta.Type

/** One entry of an origin's holders snapshot. */
export const HolderEntry = Schema.Struct({ hash: HashHex, kind: Schema.Literals(["blob", "chunk"]) })
/** Decoded holders snapshot entry. */
export type HolderEntry = typeof HolderEntry.Type

/** Inputs to `nearestHolders`: who we are and what the `nodes` fold knows of the others. */
export interface NearestOptions {
  readonly self?: string
  readonly isAlive: (node: string) => boolean
  readonly rttOf: (node: string) => number | undefined
  readonly zoneOf: (node: string) => string | undefined
  readonly myZone?: string
}

const packBuf: number[] = new Array(32).fill(0)

/** Nibble value of a lower-case hex char code (hashes are checked at the trust boundary). */
const NIBBLE = new Uint8Array(128)
for (let i = 0; i < 16; i++) NIBBLE["0123456789abcdef".charCodeAt(i)] = i

/**
 * 64-hex → 32-char one-byte string (a flat string: built in one call, never by
 * concatenation). By char code, no substrings: a flood of adverts is paid per hash here.
 */
function pack(hex: string): string {
  for (let i = 0; i < 32; i++) packBuf[i] = (NIBBLE[hex.charCodeAt(2 * i)]! << 4) | NIBBLE[hex.charCodeAt(2 * i + 1)]!
  return String.fromCharCode.apply(null, packBuf)
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))
function unpack(key: string): string {
  let s = ""
  for (let i = 0; i < key.length; i++) s += HEX[key.charCodeAt(i)]
  return s
}

/** Default most hashes one node may advertise: far beyond a real store, so only a liar hits it. */
export const DEFAULT_MAX_HOLDINGS_PER_NODE = 10_000_000
/** Default most (hash, holder) pairs in one index (~85 B each: ~5 GiB), whatever the origins. */
export const DEFAULT_MAX_PAIRS = 64_000_000
/** A node with at most this many holdings keeps a list of them, so forgetting it is not a full scan. */
const SMALL_NODE = 64

/** The state of the `holders` fold, with its queries. */
export class HolderIndex {
  readonly #ids = new Map<string, number>()
  readonly #names: Array<string | undefined> = []
  /** ids of forgotten nodes, reused: node churn (or a flood of made-up origins) does not grow the tables */
  readonly #freeIds: number[] = []
  /** packed hash → `node * 2 + isChunk`, or an array of those when several nodes hold it */
  readonly #byHash = new Map<string, number | number[]>()
  /** holdings per node id */
  readonly #counts: number[] = []
  /** packed keys of a small node (null: too many, forgetting it scans) */
  readonly #keysOf = new Map<number, string[] | null>()
  #pairs = 0
  /** Adverts dropped because a node or the index was at its cap. */
  capped = 0
  /** Per node id, the largest per-node limit an advert of it was dropped at (see `cappedAt`). */
  readonly #cappedAt = new Map<number, number>()

  /** `maxPairs`: most (hash, holder) pairs over all nodes (default 64M). */
  constructor(readonly maxPairs = DEFAULT_MAX_PAIRS) {}

  /** Number of (hash, holder) pairs held. */
  get pairs(): number {
    return this.#pairs
  }

  /** Number of distinct hashes with at least one holder. */
  get hashes(): number {
    return this.#byHash.size
  }

  /** Number of hashes `node` advertises. */
  countOf(node: string): number {
    const id = this.#ids.get(node)
    return id === undefined ? 0 : (this.#counts[id] ?? 0)
  }

  /**
   * The largest per-node limit at which an advert of `node` was dropped since it was last
   * cleared (undefined: none): the materializer syncs a node whose limit has grown since
   * (its heartbeat arrived after its adverts).
   */
  cappedAt(node: string): number | undefined {
    const id = this.#ids.get(node)
    return id === undefined ? undefined : this.#cappedAt.get(id)
  }

  /** Interned node ids (bounded by the nodes with holdings plus a free list). */
  get internedNodes(): number {
    return this.#ids.size
  }

  #intern(node: string): number {
    let id = this.#ids.get(node)
    if (id === undefined) {
      id = this.#freeIds.pop() ?? this.#names.length
      this.#names[id] = node
      this.#counts[id] = 0
      this.#ids.set(node, id)
    }
    return id
  }

  /** A new pair for `id`: counted, and listed while the node is small. */
  #added(id: number, key: string): void {
    this.#pairs++
    this.#counts[id]!++
    const keys = this.#keysOf.get(id)
    if (keys === undefined) this.#keysOf.set(id, [key])
    else if (keys !== null) {
      if (keys.length >= SMALL_NODE) this.#keysOf.set(id, null)
      else keys.push(key)
    }
  }

  #removed(id: number): void {
    this.#pairs--
    this.#counts[id]!--
  }

  /**
   * Records that `node` holds `hashHex` (idempotent; a new kind replaces the old). A new
   * pair past `limit` holdings of the node, or past `maxPairs`, is dropped (counted in
   * `capped`); returns false then.
   */
  add(node: string, hashHex: string, kind: HoldingKind = "blob", limit = Number.POSITIVE_INFINITY): boolean {
    const known = this.#ids.get(node)
    const full = this.#pairs >= this.maxPairs || (known === undefined ? limit < 1 : this.#counts[known]! >= limit)
    const key = pack(hashHex)
    const cur = this.#byHash.get(key)
    if (full) {
      // only a kind change of a pair already held is still taken
      const held = known !== undefined && cur !== undefined && (typeof cur === "number" ? cur >> 1 === known : cur.some((x) => x >> 1 === known))
      if (!held) {
        this.capped++
        if (known !== undefined && this.#counts[known]! >= limit) this.#cappedAt.set(known, Math.max(this.#cappedAt.get(known) ?? 0, limit))
        return false
      }
    }
    const id = this.#intern(node)
    const v = id * 2 + (kind === "chunk" ? 1 : 0)
    if (cur === undefined) {
      this.#byHash.set(key, v)
      this.#added(id, key)
    } else if (typeof cur === "number") {
      if (cur >> 1 === id) this.#byHash.set(key, v)
      else {
        this.#byHash.set(key, [cur, v])
        this.#added(id, key)
      }
    } else {
      const i = cur.findIndex((x) => x >> 1 === id)
      if (i >= 0) cur[i] = v
      else {
        // an exact-size copy: push() and spread over-allocate the backing store (~17 slots)
        this.#byHash.set(key, cur.concat(v))
        this.#added(id, key)
      }
    }
    return true
  }

  /** Records that `node` no longer holds `hashHex`. */
  remove(node: string, hashHex: string): void {
    const id = this.#ids.get(node)
    if (id === undefined) return
    this.#removeKey(id, pack(hashHex))
  }

  #removeKey(id: number, key: string): void {
    const cur = this.#byHash.get(key)
    if (cur === undefined) return
    if (typeof cur === "number") {
      if (cur >> 1 === id) {
        this.#byHash.delete(key)
        this.#removed(id)
      }
      return
    }
    const i = cur.findIndex((x) => x >> 1 === id)
    if (i < 0) return
    this.#removed(id)
    // back to the compact single-holder form, or an exact-size copy without it
    if (cur.length === 2) this.#byHash.set(key, cur[1 - i]!)
    else this.#byHash.set(key, cur.slice(0, i).concat(cur.slice(i + 1)))
  }

  /** Nodes that claim to hold `hashHex` (any kind), in no particular order. */
  holdersOf(hashHex: string): string[] {
    const cur = this.#byHash.get(pack(hashHex))
    if (cur === undefined) return []
    if (typeof cur === "number") return [this.#names[cur >> 1]!]
    return cur.map((x) => this.#names[x >> 1]!)
  }

  /**
   * Live holders of `hashHex` other than `self`, nearest first: same zone first, then by
   * measured RTT (unmeasured last), then by name so the order is stable.
   */
  nearestHolders(hashHex: string, opts: NearestOptions): string[] {
    const live = this.holdersOf(hashHex).filter((n) => n !== opts.self && opts.isAlive(n))
    const rank = live.map((node) => ({
      node,
      zone: opts.myZone !== undefined && opts.zoneOf(node) === opts.myZone ? 0 : 1,
      rtt: opts.rttOf(node) ?? Number.POSITIVE_INFINITY,
    }))
    rank.sort((a, b) => a.zone - b.zone || a.rtt - b.rtt || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
    return rank.map((r) => r.node)
  }

  /** Everything `node` holds (a scan: used for snapshots, not on the hot path). */
  entriesOf(node: string): HolderEntry[] {
    const id = this.#ids.get(node)
    if (id === undefined) return []
    const out: HolderEntry[] = []
    for (const [key, cur] of this.#byHash) {
      if (typeof cur === "number") {
        if (cur >> 1 === id) out.push({ hash: unpack(key), kind: cur & 1 ? "chunk" : "blob" })
      } else {
        for (const x of cur) if (x >> 1 === id) out.push({ hash: unpack(key), kind: x & 1 ? "chunk" : "blob" })
      }
    }
    return out
  }

  /** Forgets every holding of `node` (and its interned id). */
  clear(node: string): void {
    const id = this.#ids.get(node)
    if (id === undefined) return
    const keys = this.#keysOf.get(id)
    this.#keysOf.delete(id)
    if (keys !== undefined && keys !== null) {
      // a small node: its listed keys (some may be gone already), no scan
      for (const key of keys) this.#removeKey(id, key)
    } else if (keys === null) {
      for (const [key, cur] of this.#byHash) {
        if (typeof cur === "number") {
          if (cur >> 1 === id) {
            this.#byHash.delete(key)
            this.#removed(id)
          }
        } else {
          const i = cur.findIndex((x) => x >> 1 === id)
          if (i < 0) continue
          this.#removed(id)
          if (cur.length === 2) this.#byHash.set(key, cur[1 - i]!)
          else this.#byHash.set(key, cur.slice(0, i).concat(cur.slice(i + 1)))
        }
      }
    }
    // nothing refers to the id any more: it is free for the next node
    this.#cappedAt.delete(id)
    this.#ids.delete(node)
    this.#names[id] = undefined
    this.#counts[id] = 0
    this.#freeIds.push(id)
  }
}

const ENTRY_BYTES = 33

/** Snapshot pages as packed binary: 1 kind byte + 32 hash bytes per entry (vs ~80 as JSON). */
const holdersPageCodec = {
  encode(entries: ReadonlyArray<HolderEntry>): Uint8Array {
    const out = new Uint8Array(entries.length * ENTRY_BYTES)
    entries.forEach((e, i) => {
      const o = i * ENTRY_BYTES
      out[o] = e.kind === "chunk" ? 1 : 0
      for (let j = 0; j < 32; j++) out[o + 1 + j] = parseInt(e.hash.slice(2 * j, 2 * j + 2), 16)
    })
    return out
  },
  decode(bytes: Uint8Array): HolderEntry[] | undefined {
    if (bytes.length % ENTRY_BYTES !== 0) return undefined
    const out: HolderEntry[] = []
    for (let o = 0; o < bytes.length; o += ENTRY_BYTES) {
      const k = bytes[o]!
      if (k > 1) return undefined
      let hash = ""
      for (let j = 1; j <= 32; j++) hash += HEX[bytes[o + j]!]
      out.push({ hash, kind: k === 1 ? "chunk" : "blob" })
    }
    return out
  },
}

/** Builds a `holders` fold definition with its own cap on pairs (name `holders`). */
export function holdersFoldWith(opts: { maxPairs?: number } = {}): FoldDefinition<HolderIndex, HoldersDelta, HolderEntry> {
  return defineFold({
    name: "holders",
    data: HoldersDelta,
    entry: HolderEntry,
    pageCodec: holdersPageCodec,
    initial: () => new HolderIndex(opts.maxPairs),
    apply(state, data, { origin, limit }) {
      for (const h of data.remove) state.remove(origin, h)
      const kind = data.kind ?? "blob"
      for (const h of data.add) state.add(origin, h, kind, limit)
      return state
    },
    snapshotOrigin: (state, origin) => state.entriesOf(origin),
    restoreOrigin(state, origin, entries, _now, limit) {
      state.clear(origin)
      for (const e of entries) state.add(origin, e.hash, e.kind, limit)
      return state
    },
  })
}

/** The `holders` fold definition (name `holders`, default caps). */
export const holdersFold: FoldDefinition<HolderIndex, HoldersDelta, HolderEntry> = holdersFoldWith()
