import { mkdir, readdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { Blobs, BlobRef, fetchDir, readDirManifest, storeDir, walkDir } from "../../plugin/index.ts"
import { DIR_MAGIC, encodeDirManifest } from "../../storage/format/dir-manifest.ts"
import { seededBytes } from "../support/bytes.ts"
import { tempDir } from "../support/temp.ts"
import { describeTree, makeTree } from "../support/tree.ts"
import { codeOf } from "../support/expect.ts"
import { repeatedSubdir } from "../support/hostile-tree.ts"

async function countChunks(blobs: Blobs): Promise<number> {
  let n = 0
  for await (const _ of blobs.store.chunks.list()) n++
  return n
}

describe("directory trees", () => {
  let tmp: { path: string; remove(): Promise<void> }
  let blobs: Blobs
  beforeEach(async () => {
    tmp = await tempDir("df-dirs-")
    blobs = await Blobs.open({ dir: join(tmp.path, "store") })
  })
  afterEach(async () => {
    await blobs.close()
    await tmp.remove()
  })

  it("round-trips a tree: bytes, modes, empty dirs, links inside and outside, 0-byte and >max-chunk files", async () => {
    const src = join(tmp.path, "src")
    await makeTree(src)
    const progress: Array<{ bytes: number; items?: number }> = []
    const root = await storeDir(blobs, src, { onProgress: (p) => progress.push(p) })
    expect(root.kind).toBe("dir")
    expect(progress.at(-1)?.items).toBe(9)
    const out = join(tmp.path, "out")
    await fetchDir(blobs, root, out)
    expect(await describeTree(out)).toEqual(await describeTree(src))
    // storing again gives the same root ref
    expect((await storeDir(blobs, src)).equals(root)).toBe(true)
  })

  it("dedupes identical subtrees into one ref", async () => {
    const src = join(tmp.path, "src")
    for (const d of ["a", "b"]) {
      await mkdir(join(src, d, "x"), { recursive: true })
      await writeFile(join(src, d, "x", "f.txt"), "same")
    }
    const root = await storeDir(blobs, src)
    const m = await readDirManifest(blobs, root)
    const refs = m.entries.map((e) => (e.kind === "dir" ? e.ref.toString() : ""))
    expect(refs[0]).toBe(refs[1])
  })

  it("stores only the changed file's new chunks and the manifests on its path", async () => {
    const src = join(tmp.path, "src")
    await makeTree(src, 3, false)
    await writeFile(join(src, "src/lib/deep/deeper/large.bin"), seededBytes(24 << 20, 77))
    await storeDir(blobs, src)
    const before = await countChunks(blobs)
    // change a few bytes in the middle of the large file
    const changed = seededBytes(24 << 20, 77)
    changed.set(seededBytes(64, 5), 12 << 20)
    await writeFile(join(src, "src/lib/deep/deeper/large.bin"), changed)
    await storeDir(blobs, src)
    const added = (await countChunks(blobs)) - before
    // 1–2 data chunks + 4 dir manifests (deeper, deep, lib, src) + the root; the file's manifest is in the index
    expect(added).toBeGreaterThanOrEqual(6)
    expect(added).toBeLessThanOrEqual(7)
  })

  it("walks a tree before materializing it", async () => {
    const src = join(tmp.path, "src")
    await makeTree(src, 4, false)
    const paths: string[] = []
    for await (const e of walkDir(blobs, await storeDir(blobs, src))) paths.push(`${e.entry.kind}:${e.path}`)
    expect(paths).toContain("file:src/lib/deep/deeper/data.bin")
    expect(paths).toContain("symlink:src/link-outside")
    expect(paths).toContain("dir:empty/also-empty")
  })

  it("replaces an existing dest atomically and leaves no temp or backup siblings", async () => {
    const a = join(tmp.path, "a")
    const b = join(tmp.path, "b")
    await makeTree(a, 1, false)
    await makeTree(b, 2, false)
    const out = join(tmp.path, "out")
    await fetchDir(blobs, await storeDir(blobs, a), out)
    await fetchDir(blobs, await storeDir(blobs, b), out)
    expect(await describeTree(out)).toEqual(await describeTree(b))
    expect((await readdir(tmp.path)).filter((n) => n.includes(".df-"))).toEqual([])
  })

  it("storeDir and readDirManifest take tree limits and name the one passed", async () => {
    const src = join(tmp.path, "src")
    await makeTree(src, 5, false)
    const tooLarge = (p: Promise<unknown>) => p.then(() => undefined, (e: { code?: string; what?: string }) => `${e.code} ${e.what}`)
    expect(await tooLarge(storeDir(blobs, src, { limits: { maxEntries: 5 } }))).toBe("TOO_LARGE tree entries")
    expect(await tooLarge(storeDir(blobs, src, { limits: { maxDepth: 2 } }))).toBe("TOO_LARGE tree depth")
    expect(await tooLarge(storeDir(blobs, src, { limits: { maxBytes: 1000 } }))).toBe("TOO_LARGE tree bytes")
    const root = await storeDir(blobs, src, { limits: { maxDepth: 4 } })
    // the root's own manifest: 7 entries, of which README.md, run.sh and zero.bin (26 bytes) are files
    expect((await readDirManifest(blobs, root, { limits: { maxEntries: 7, maxBytes: 26 } })).entries.length).toBe(7)
    expect(await tooLarge(readDirManifest(blobs, root, { limits: { maxEntries: 6 } }))).toBe("TOO_LARGE tree entries")
    expect(await tooLarge(readDirManifest(blobs, root, { limits: { maxBytes: 10 } }))).toBe("TOO_LARGE tree bytes")
  })

  it("an abort while files are written rejects with ABORTED and leaves dest and its folder as they were", async () => {
    const { root } = await repeatedSubdir(blobs, 300, 10)
    const out = join(tmp.path, "out")
    await mkdir(out)
    await writeFile(join(out, "keep.txt"), "old")
    const ctrl = new AbortController()
    const before = (await readdir(tmp.path)).sort()
    expect(await codeOf(fetchDir(blobs, root, out, { signal: ctrl.signal, onProgress: (p) => (p.items ?? 0) > 0 && ctrl.abort() }))).toBe("ABORTED")
    expect(await readdir(out)).toEqual(["keep.txt"])
    expect((await readdir(tmp.path)).sort()).toEqual(before)
  })

  it("rejects a non-dir ref with BAD_REF and keeps dest untouched when a file is missing", async () => {
    const file = await blobs.put(new Uint8Array([1, 2, 3]))
    expect(await codeOf(fetchDir(blobs, file, join(tmp.path, "x")))).toBe("BAD_REF")
    const missing = BlobRef.of("chunk", 5, new Uint8Array(32).fill(7))
    const bad = await blobs.store.putSingle(encodeDirManifest({ entries: [{ name: "f", kind: "file", mode: 0o644, ref: missing }] }), "dir")
    const out = join(tmp.path, "out")
    await mkdir(out)
    await writeFile(join(out, "keep.txt"), "old")
    expect(await codeOf(fetchDir(blobs, bad, out))).toBe("NOT_FOUND")
    expect(await readdir(out)).toEqual(["keep.txt"])
    expect((await readdir(tmp.path)).filter((n) => n.includes(".df-"))).toEqual([])
  })
})

/** Builds raw dir-manifest bytes by hand, as an attacker would, bypassing the encoder's checks. */
function rawManifest(entries: Array<{ kind: number; name: string; target?: string; ref?: BlobRef; mode?: number }>): Uint8Array {
  const parts: number[] = [...DIR_MAGIC, 0, 0, 0, entries.length]
  for (const e of entries) {
    const name = Buffer.from(e.name, "utf8")
    parts.push(e.kind, 0x01, 0xa4, name.length >> 8, name.length & 0xff, ...name)
    if (e.target !== undefined) {
      const t = Buffer.from(e.target, "utf8")
      parts.push(t.length >> 8, t.length & 0xff, ...t)
    } else parts.push(...e.ref!.toBytes())
  }
  return Uint8Array.from(parts)
}

describe("malicious directory manifests", () => {
  let tmp: { path: string; remove(): Promise<void> }
  let blobs: Blobs
  let fileRef: BlobRef
  beforeEach(async () => {
    tmp = await tempDir("df-evil-")
    blobs = await Blobs.open({ dir: join(tmp.path, "store") })
    fileRef = await blobs.put(new TextEncoder().encode("payload"))
  })
  afterEach(async () => {
    await blobs.close()
    await tmp.remove()
  })

  const cases: Array<[string, () => Array<{ kind: number; name: string; target?: string; ref?: BlobRef }>, string]> = [
    ["a name with /", () => [{ kind: 0, name: "a/b", ref: fileRef }], "UNSAFE_PATH"],
    ["an absolute path", () => [{ kind: 0, name: "/etc/passwd", ref: fileRef }], "UNSAFE_PATH"],
    ["a .. name", () => [{ kind: 0, name: "..", ref: fileRef }], "UNSAFE_PATH"],
    ["a NUL in a name", () => [{ kind: 0, name: "a\0b", ref: fileRef }], "UNSAFE_PATH"],
    ["an empty name", () => [{ kind: 0, name: "", ref: fileRef }], "UNSAFE_PATH"],
    ["duplicate names", () => [{ kind: 0, name: "x", ref: fileRef }, { kind: 0, name: "x", ref: fileRef }], "BAD_MANIFEST"],
    ["a link and a file of the same name (write through a link)", () => [{ kind: 2, name: "x", target: "/tmp" }, { kind: 0, name: "x", ref: fileRef }], "BAD_MANIFEST"],
    ["a file entry pointing at a dir ref", () => [{ kind: 0, name: "x", ref: BlobRef.of("dir", 12, new Uint8Array(32)) }], "BAD_MANIFEST"],
  ]

  it.each(cases)("refuses %s with a typed error and writes nothing outside the temp dir", async (_, entries, code) => {
    const root = await blobs.store.putSingle(rawManifest(entries()), "dir")
    const out = join(tmp.path, "out")
    const before = (await readdir(tmp.path)).sort()
    expect(await codeOf(fetchDir(blobs, root, out))).toBe(code)
    expect((await readdir(tmp.path)).sort()).toEqual(before)
  })

  it("refuses a truncated manifest, and absurd depth, with typed errors", async () => {
    const good = rawManifest([{ kind: 0, name: "x", ref: fileRef }])
    const root = await blobs.store.putSingle(good.subarray(0, good.length - 5), "dir")
    expect(await codeOf(fetchDir(blobs, root, join(tmp.path, "o1")))).toBe("BAD_MANIFEST")
    let ref = await blobs.store.putSingle(rawManifest([]), "dir")
    for (let i = 0; i < 300; i++) ref = await blobs.store.putSingle(rawManifest([{ kind: 1, name: "d", ref }]), "dir")
    expect(await codeOf(fetchDir(blobs, ref, join(tmp.path, "o2")))).toBe("TOO_LARGE")
    expect((await readdir(tmp.path)).filter((n) => n.startsWith("o"))).toEqual([])
  })

  it("keeps link targets as data: a link pointing outside is created, never followed", async () => {
    const root = await blobs.store.putSingle(rawManifest([{ kind: 2, name: "escape", target: "../../../../etc" }]), "dir")
    const out = join(tmp.path, "out")
    await fetchDir(blobs, root, out)
    expect(await describeTree(out)).toEqual({ escape: "link ../../../../etc" })
  })
})
