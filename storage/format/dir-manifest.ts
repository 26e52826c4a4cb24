import { BlobRef, REF_BYTES } from "./blob-ref.ts"
import { CHUNK_MAX_BYTES } from "./constants.ts"
import { BadManifestError, TooLargeError, UnsafePathError } from "./errors.ts"

/** One entry of a directory: a file or subdirectory (by ref) or a symlink (by target, never followed). */
export type DirEntry =
  | { readonly name: string; readonly kind: "file"; readonly mode: number; readonly ref: BlobRef }
  | { readonly name: string; readonly kind: "dir"; readonly mode: number; readonly ref: BlobRef }
  | { readonly name: string; readonly kind: "symlink"; readonly mode: number; readonly target: string }

/** A directory's entries, sorted by the bytes of their UTF-8 names. */
export interface DirManifest {
  readonly entries: readonly DirEntry[]
}

/** Most entries one directory may have (its manifest stays one chunk). */
export const DIR_MAX_ENTRIES = 200_000
/**
 * Default limits of a whole tree (storeDir, fetchDir, walkDir; each call can lower or raise
 * them): nested directories below the root, entries of the expanded tree (a subdirectory
 * named n times counts n times), and the sum of its files' sizes. They fit real repositories
 * with room and stop a small hostile manifest from expanding into a tree no node can hold.
 */
export const TREE_MAX_DEPTH = 256
export const TREE_MAX_ENTRIES = 10_000_000
export const TREE_MAX_BYTES = 2 ** 40
/** @deprecated the default depth limit is TREE_MAX_DEPTH. */
export const DIR_MAX_DEPTH = TREE_MAX_DEPTH
export const NAME_MAX_BYTES = 255
export const LINK_MAX_BYTES = 4096

/**
 * Encoding: MAGIC(8) | count u32 BE | entries, each: kind u8 (0 file, 1 dir, 2 symlink) |
 * mode u16 BE (permission bits) | name length u16 | name UTF-8 | then a 42-byte binary ref
 * (file, dir) or target length u16 | target UTF-8 (symlink). Sorted by name bytes, no
 * duplicates: one encoding per directory, so identical subtrees have identical refs.
 */
export const DIR_MAGIC = new TextEncoder().encode("DFDIR\x01\n\0")
/** The mode bits a manifest keeps: permissions, setuid/setgid, sticky. */
const MODE_MASK = 0o7777
const KIND = { file: 0, dir: 1, symlink: 2 } as const
const KINDS = ["file", "dir", "symlink"] as const

const enc = new TextEncoder()
// ignoreBOM keeps a leading U+FEFF as text: stripped, "\uFEFFa" and "a" would decode alike (two encodings of one tree)
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** Rejects names that could leave the directory or confuse a filesystem. */
export function checkName(name: string): void {
  const bytes = enc.encode(name).length
  if (name.length === 0) throw new UnsafePathError(name, "empty name")
  if (name === "." || name === "..") throw new UnsafePathError(name, "dot name")
  if (name.includes("/") || name.includes("\\")) throw new UnsafePathError(name, "separator in name")
  if (name.includes("\0")) throw new UnsafePathError(name, "NUL in name")
  if (bytes > NAME_MAX_BYTES) throw new UnsafePathError(name, "name too long")
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

export function encodeDirManifest(manifest: DirManifest): Uint8Array {
  if (manifest.entries.length > DIR_MAX_ENTRIES) throw new TooLargeError("directory", manifest.entries.length, DIR_MAX_ENTRIES)
  const rows = manifest.entries.map((e) => {
    checkName(e.name)
    return { e, name: enc.encode(e.name), target: e.kind === "symlink" ? enc.encode(e.target) : undefined }
  })
  rows.sort((a, b) => compareBytes(a.name, b.name))
  let size = DIR_MAGIC.length + 4
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!
    if (i > 0 && compareBytes(rows[i - 1]!.name, r.name) === 0) throw new BadManifestError(`duplicate name ${r.e.name}`)
    if (r.target && (r.target.length === 0 || r.target.length > LINK_MAX_BYTES || r.e.kind === "symlink" && r.e.target.includes("\0"))) {
      throw new UnsafePathError(r.e.name, "bad link target")
    }
    size += 5 + r.name.length + (r.target ? 2 + r.target.length : REF_BYTES)
  }
  if (size > CHUNK_MAX_BYTES) throw new TooLargeError("directory manifest", size, CHUNK_MAX_BYTES)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  out.set(DIR_MAGIC, 0)
  view.setUint32(DIR_MAGIC.length, rows.length)
  let off = DIR_MAGIC.length + 4
  for (const { e, name, target } of rows) {
    out[off] = KIND[e.kind]
    view.setUint16(off + 1, e.mode & MODE_MASK)
    view.setUint16(off + 3, name.length)
    out.set(name, off + 5)
    off += 5 + name.length
    if (target) {
      view.setUint16(off, target.length)
      out.set(target, off + 2)
      off += 2 + target.length
    } else {
      out.set((e as { ref: BlobRef }).ref.toBytes(), off)
      off += REF_BYTES
    }
  }
  return out
}

/**
 * Decodes and checks a directory manifest from an untrusted peer: magic, bounds of every
 * field, strict UTF-8, safe names (UnsafePathError), sorted and unique (BadManifestError),
 * refs of the right kind, no trailing bytes.
 */
export function decodeDirManifest(bytes: Uint8Array): DirManifest {
  const fail = (why: string): never => {
    throw new BadManifestError(`directory: ${why}`)
  }
  if (bytes.length < DIR_MAGIC.length + 4) fail("truncated header")
  for (let i = 0; i < DIR_MAGIC.length; i++) if (bytes[i] !== DIR_MAGIC[i]) fail("bad magic")
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const count = view.getUint32(DIR_MAGIC.length)
  if (count > DIR_MAX_ENTRIES) throw new TooLargeError("directory", count, DIR_MAX_ENTRIES)
  const entries: DirEntry[] = []
  let off = DIR_MAGIC.length + 4
  let prev: Uint8Array | undefined
  const need = (n: number) => {
    if (off + n > bytes.length) fail("truncated entry")
  }
  for (let i = 0; i < count; i++) {
    need(5)
    const kind = KINDS[bytes[off]!] ?? fail(`unknown kind ${bytes[off]}`)
    const mode = view.getUint16(off + 1)
    // the encoder writes permission bits only: anything else would give one tree two refs
    if (mode > MODE_MASK) fail(`mode ${mode.toString(8)} has bits outside 0o7777`)
    const nameLen = view.getUint16(off + 3)
    off += 5
    need(nameLen)
    const nameBytes = bytes.subarray(off, off + nameLen)
    off += nameLen
    let name: string
    try {
      name = strictUtf8.decode(nameBytes)
    } catch {
      throw new UnsafePathError("<invalid utf-8>", "name is not UTF-8")
    }
    checkName(name)
    if (prev && compareBytes(prev, nameBytes) >= 0) fail(`names not sorted or duplicated at ${JSON.stringify(name)}`)
    prev = nameBytes
    if (kind === "symlink") {
      need(2)
      const len = view.getUint16(off)
      off += 2
      need(len)
      if (len === 0 || len > LINK_MAX_BYTES) throw new UnsafePathError(name, "bad link target length")
      let target: string
      try {
        target = strictUtf8.decode(bytes.subarray(off, off + len))
      } catch {
        throw new UnsafePathError(name, "link target is not UTF-8")
      }
      if (target.includes("\0")) throw new UnsafePathError(name, "NUL in link target")
      off += len
      entries.push({ name, kind, mode, target })
    } else {
      need(REF_BYTES)
      const ref = BlobRef.fromBytes(bytes.subarray(off, off + REF_BYTES))
      off += REF_BYTES
      if (kind === "dir" ? ref.kind !== "dir" : ref.kind === "dir") fail(`entry ${JSON.stringify(name)} has a ${ref.kind} ref`)
      entries.push({ name, kind, mode, ref })
    }
  }
  if (off !== bytes.length) fail("trailing bytes")
  return { entries }
}
