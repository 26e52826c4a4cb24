import { REF_VERSION } from "./constants.ts"
import { BadRefError } from "./errors.ts"
import { fromHex, toHex } from "./hex.ts"

/** What the hash of a ref addresses: raw chunk bytes, a chunk manifest, or a directory manifest. */
export type BlobKind = "chunk" | "manifest" | "dir"

const KIND_CODE: Record<BlobKind, number> = { chunk: 0, manifest: 1, dir: 2 }
const CODE_KIND: readonly BlobKind[] = ["chunk", "manifest", "dir"]

/** Binary form: version u8 | kind u8 | size u64 BE | hash[32] = 42 bytes. */
export const REF_BYTES = 42

// df1-<kind>-<decimal size, no leading zeros>-<64 lower-case hex>
const REF_RE = /^df1-(chunk|manifest|dir)-(0|[1-9][0-9]{0,15})-([0-9a-f]{64})$/

/**
 * The address of a blob: its kind, its size in bytes and its 32-byte BLAKE3 hash. The
 * string form (`df1-manifest-1048577-<hex>`) is canonical, URL- and NATS-subject-safe, and
 * is what `toJSON` gives, so a ref rides in `JSON.stringify(event)` and comes back with
 * `BlobRef.parse`. For a one-chunk blob the hash is BLAKE3 of its bytes (what `b3sum` prints).
 */
export class BlobRef {
  private constructor(
    readonly kind: BlobKind,
    readonly size: number,
    readonly hash: Uint8Array,
    readonly hex: string,
  ) {}

  static of(kind: BlobKind, size: number, hash: Uint8Array): BlobRef {
    if (!(kind in KIND_CODE)) throw new BadRefError(`unknown kind ${String(kind)}`)
    if (!Number.isSafeInteger(size) || size < 0) throw new BadRefError(`bad size ${size}`)
    if (hash.length !== 32) throw new BadRefError(`hash must be 32 bytes, got ${hash.length}`)
    return new BlobRef(kind, size, Uint8Array.from(hash), toHex(hash))
  }

  /** Parses the canonical string form; anything else throws BadRefError (code BAD_REF). */
  static parse(text: unknown): BlobRef {
    if (typeof text !== "string") throw new BadRefError(`expected a string, got ${typeof text}`)
    if (text.length > 120) throw new BadRefError("too long")
    const m = REF_RE.exec(text)
    if (m === null) throw new BadRefError(`not a canonical ref: ${JSON.stringify(text.slice(0, 100))}`)
    const size = Number(m[2])
    if (!Number.isSafeInteger(size)) throw new BadRefError("size out of range")
    return BlobRef.of(m[1] as BlobKind, size, fromHex(m[3]!)!)
  }

  /** Accepts a ref or its string form (what public methods take). */
  static from(ref: BlobRef | string): BlobRef {
    return ref instanceof BlobRef ? ref : BlobRef.parse(ref)
  }

  /** Decodes the 42-byte binary form. */
  static fromBytes(bytes: Uint8Array): BlobRef {
    if (bytes.length !== REF_BYTES) throw new BadRefError(`binary ref must be ${REF_BYTES} bytes`)
    if (bytes[0] !== REF_VERSION) throw new BadRefError(`unsupported ref version ${bytes[0]}`)
    const kind = CODE_KIND[bytes[1]!]
    if (kind === undefined) throw new BadRefError(`unknown kind code ${bytes[1]}`)
    const size = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(2))
    if (!Number.isSafeInteger(size)) throw new BadRefError("size out of range")
    return BlobRef.of(kind, size, bytes.subarray(10, 42))
  }

  toBytes(): Uint8Array {
    const out = new Uint8Array(REF_BYTES)
    out[0] = REF_VERSION
    out[1] = KIND_CODE[this.kind]
    new DataView(out.buffer).setBigUint64(2, BigInt(this.size))
    out.set(this.hash, 10)
    return out
  }

  toString(): string {
    return `df1-${this.kind}-${this.size}-${this.hex}`
  }

  toJSON(): string {
    return this.toString()
  }

  equals(other: BlobRef): boolean {
    return this.kind === other.kind && this.size === other.size && this.hex === other.hex
  }
}
