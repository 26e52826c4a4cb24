import { CHUNK_MAX_BYTES, MANIFEST_MAX_ENTRIES } from "./constants.ts"
import { BadManifestError, TooLargeError } from "./errors.ts"

/** One chunk of a blob: its BLAKE3 hash and length. */
export interface ManifestEntry {
  readonly hash: Uint8Array
  readonly length: number
}

/** The ordered chunk list of a multi-chunk blob. */
export interface Manifest {
  readonly size: number
  readonly entries: readonly ManifestEntry[]
}

/**
 * Encoding: MAGIC(8) | size u64 BE | count u32 BE | count × (hash[32] | length u32 BE).
 * The magic separates manifests from raw chunks, and the encoding is canonical (one
 * encoding per manifest), so the manifest's BLAKE3 is the blob's identity.
 */
export const MANIFEST_MAGIC = new TextEncoder().encode("DFMANI\x01\n")
const HEADER = MANIFEST_MAGIC.length + 8 + 4
const ENTRY = 36

/** Bytes of the encoding of a manifest with `count` entries. */
export function manifestEncodedLength(count: number): number {
  return HEADER + count * ENTRY
}

export function encodeManifest(manifest: Manifest): Uint8Array {
  const { entries } = manifest
  if (entries.length > MANIFEST_MAX_ENTRIES) {
    throw new TooLargeError("manifest", entries.length, MANIFEST_MAX_ENTRIES)
  }
  const out = new Uint8Array(manifestEncodedLength(entries.length))
  const view = new DataView(out.buffer)
  out.set(MANIFEST_MAGIC, 0)
  view.setBigUint64(MANIFEST_MAGIC.length, BigInt(manifest.size))
  view.setUint32(MANIFEST_MAGIC.length + 8, entries.length)
  let off = HEADER
  for (const e of entries) {
    out.set(e.hash, off)
    view.setUint32(off + 32, e.length)
    off += ENTRY
  }
  return out
}

/**
 * Decodes and checks a manifest: magic, exact length, entry count limits, every chunk
 * length in 1..CHUNK_MAX_BYTES, lengths summing to the size, and at least two chunks
 * (a one-chunk blob is addressed as the chunk itself, so a one-entry manifest is not
 * canonical). `expectedSize`, when given, must match too. Throws BadManifestError.
 */
export function decodeManifest(bytes: Uint8Array, expectedSize?: number): Manifest {
  if (bytes.length < HEADER) throw new BadManifestError("truncated header")
  for (let i = 0; i < MANIFEST_MAGIC.length; i++) {
    if (bytes[i] !== MANIFEST_MAGIC[i]) throw new BadManifestError("bad magic")
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const size = Number(view.getBigUint64(MANIFEST_MAGIC.length))
  const count = view.getUint32(MANIFEST_MAGIC.length + 8)
  if (count > MANIFEST_MAX_ENTRIES) throw new BadManifestError(`too many entries: ${count}`)
  if (count < 2) throw new BadManifestError("fewer than two chunks")
  if (bytes.length !== manifestEncodedLength(count)) {
    throw new BadManifestError(`length ${bytes.length} does not match ${count} entries`)
  }
  if (expectedSize !== undefined && size !== expectedSize) {
    throw new BadManifestError(`size ${size} does not match the ref's ${expectedSize}`)
  }
  const entries: ManifestEntry[] = new Array(count)
  let sum = 0
  let off = HEADER
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(off + 32)
    if (length < 1 || length > CHUNK_MAX_BYTES) throw new BadManifestError(`chunk ${i} has length ${length}`)
    entries[i] = { hash: bytes.slice(off, off + 32), length }
    sum += length
    off += ENTRY
  }
  if (sum !== size) throw new BadManifestError(`chunk lengths sum to ${sum}, not ${size}`)
  return { size, entries }
}
