import { createHash } from "node:crypto"
import { chmod, readdir } from "node:fs/promises"
import { join } from "node:path"
import type { Blobs, BlobRef, DirEntry } from "../../plugin/index.ts"
import { encodeDirManifest } from "../../storage/format/dir-manifest.ts"

/** Stores a directory manifest as storeDir does (a part of a tree) and advertises it, as an attacker publishing a ref could. */
export async function putDir(blobs: Blobs, entries: DirEntry[]): Promise<BlobRef> {
  const ref = await blobs.store.putSingle(encodeDirManifest({ entries }), "dir", { child: true })
  blobs.mesh?.advertise(ref)
  return ref
}

/** Zero-padded names, so they sort the way they were made. */
export const nameOf = (prefix: string, i: number, width = 6) => `${prefix}${String(i).padStart(width, "0")}`

/** `files` small distinct files in one directory (their bytes vary with `seed`), and a root naming that directory `times` times. */
export async function repeatedSubdir(blobs: Blobs, times: number, files: number, seed = 0): Promise<{ root: BlobRef; sub: BlobRef; contents: Uint8Array[] }> {
  const contents: Uint8Array[] = []
  const fileEntries: DirEntry[] = []
  for (let i = 0; i < files; i++) {
    const bytes = new TextEncoder().encode(`file ${i} of the repeated subdirectory ${seed}\n`.repeat(i + 1))
    contents.push(bytes)
    fileEntries.push({ name: nameOf("f", i, 3), kind: "file", mode: 0o644, ref: await blobs.put(bytes) })
  }
  const sub = await putDir(blobs, fileEntries)
  const entries: DirEntry[] = []
  for (let i = 0; i < times; i++) entries.push({ name: nameOf("d", i), kind: "dir", mode: 0o755, ref: sub })
  return { root: await putDir(blobs, entries), sub, contents }
}

/** `depth` directories nested in one another (each named "d"), the innermost empty. */
export async function chain(blobs: Blobs, depth: number): Promise<BlobRef> {
  let ref = await putDir(blobs, [])
  for (let i = 0; i < depth; i++) ref = await putDir(blobs, [{ name: "d", kind: "dir", mode: 0o755, ref }])
  return ref
}

/** What `describeTree` (test/support/tree.ts) says of a file with these bytes and mode. */
export function describeFile(bytes: Uint8Array, mode: number): string {
  return `file ${(mode & 0o777).toString(8)} ${bytes.length} ${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}`
}

/** Gives the owner rwx on every directory below `dir`, so a tree with read-only directories can be removed by a non-root user. */
export async function unlockForRemoval(dir: string): Promise<void> {
  let names
  try {
    names = await readdir(dir, { withFileTypes: true })
  } catch {
    return
  }
  for (const e of names) {
    if (!e.isDirectory()) continue
    await chmod(join(dir, e.name), 0o700)
    await unlockForRemoval(join(dir, e.name))
  }
}

/** Samples the heap every few milliseconds; `stop()` gives the largest growth over the start, in bytes. */
export function heapWatch(): { stop(): number } {
  const start = process.memoryUsage().heapUsed
  let peak = start
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5)
  return {
    stop() {
      clearInterval(timer)
      peak = Math.max(peak, process.memoryUsage().heapUsed)
      return peak - start
    },
  }
}
