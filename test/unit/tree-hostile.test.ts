import { mkdir, readdir, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Blobs, type BlobRef, type DirEntry, fetchDir, type TreeLimits } from "../../plugin/index.ts"
import { seededBytes } from "../support/bytes.ts"
import { describeFile, putDir, unlockForRemoval } from "../support/hostile-tree.ts"
import { tempDir } from "../support/temp.ts"
import { describeTree } from "../support/tree.ts"

/** FUZZ_SEED=<n> replays a run (the seed is in the test's name and in fast-check's failure message). */
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const RUNS = Number(process.env.FUZZ_RUNS ?? 60)
/** Past this, fast-check stops generating (the runs done so far still count): a bound on suite time under load. */
const TIME_LIMIT_MS = 20_000

/** Sizes of the files trees are made of: empty, tiny, small and one above the small-file cut (64 KiB). */
const FILE_SIZES = [0, 1, 333, 70_000]
const DIR_MODES = [0o755, 0o700, 0o750, 0o711, 0o555, 0o500, 0o2755, 0o1777]
const FILE_MODES = [0o644, 0o755, 0o444, 0o600]
const LINK_TARGETS = ["e0", "../x", "/etc/hostname", "../../../../etc", "a/b/c"]

type EntrySpec = { kind: "file"; file: number; mode: number } | { kind: "dir"; child: number; mode: number } | { kind: "symlink"; target: string }

/** A DAG: directory i may name any directory before it (often the same one many times); the root is the last. */
interface TreeSpec {
  dirs: EntrySpec[][]
  /** Names the root gets wrapped in this many times over (a wide fan-out of one subtree). */
  fan: number
  /** Then nested in a chain this deep. */
  chain: number
  limits: Required<TreeLimits>
}

const entryArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("file" as const), file: fc.nat(FILE_SIZES.length - 1), mode: fc.constantFrom(...FILE_MODES) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("dir" as const), child: fc.nat(), mode: fc.constantFrom(...DIR_MODES) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("symlink" as const), target: fc.constantFrom(...LINK_TARGETS) }) },
)

const specArb: fc.Arbitrary<TreeSpec> = fc.record({
  dirs: fc.array(fc.array(entryArb, { maxLength: 7 }), { minLength: 1, maxLength: 7 }),
  fan: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 150 })),
  chain: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 24 })),
  limits: fc.record({
    maxEntries: fc.integer({ min: 0, max: 2_500 }),
    maxDepth: fc.integer({ min: 0, max: 26 }),
    maxBytes: fc.oneof(fc.integer({ min: 0, max: 400_000 }), fc.constant(2 ** 40)),
  }),
})

/** A node of the model tree: what fetchDir must produce. */
type ModelDir = Array<{ name: string; mode: number } & ({ kind: "file"; file: number } | { kind: "dir"; dir: ModelDir } | { kind: "symlink"; target: string })>

/** The spec as model directories (shared, not expanded) with the root last. */
function model(spec: TreeSpec): ModelDir {
  const dirs: ModelDir[] = []
  spec.dirs.forEach((entries, i) => {
    dirs.push(
      entries.map((e, k) => {
        const name = `e${k}`
        if (e.kind === "file") return { name, kind: "file", file: e.file, mode: e.mode }
        if (e.kind === "symlink") return { name, kind: "symlink", target: e.target, mode: 0o777 }
        // a directory names one made before it; the first has none, so it gets an empty one
        return { name, kind: "dir", mode: e.mode, dir: i === 0 ? [] : dirs[e.child % i]! }
      }),
    )
  })
  let root = dirs[dirs.length - 1]!
  if (spec.fan > 0) root = Array.from({ length: spec.fan }, (_, i) => ({ name: `f${i}`, kind: "dir" as const, mode: 0o755, dir: root }))
  for (let i = 0; i < spec.chain; i++) root = [{ name: "c", kind: "dir", mode: 0o755, dir: root }]
  return root
}

/** Entries, bytes and depth of the expanded model, memoized by node (an independent count from treeStats'). */
function measure(dir: ModelDir, memo = new Map<ModelDir, { entries: number; bytes: number; height: number }>()) {
  const hit = memo.get(dir)
  if (hit) return hit
  const out = { entries: dir.length, bytes: 0, height: 0 }
  for (const e of dir) {
    if (e.kind === "file") out.bytes += FILE_SIZES[e.file]!
    if (e.kind !== "dir") continue
    const s = measure(e.dir, memo)
    out.entries += s.entries
    out.bytes += s.bytes
    out.height = Math.max(out.height, s.height + 1)
  }
  memo.set(dir, out)
  return out
}

/** The model expanded as describeTree sees a tree. */
function expand(dir: ModelDir, contents: Uint8Array[], prefix = "", out: Record<string, string> = {}): Record<string, string> {
  for (const e of dir) {
    const path = prefix ? `${prefix}/${e.name}` : e.name
    if (e.kind === "file") out[path] = describeFile(contents[e.file]!, e.mode)
    else if (e.kind === "symlink") out[path] = `link ${e.target}`
    else {
      out[path] = `dir ${(e.mode & 0o777).toString(8)}`
      expand(e.dir, contents, path, out)
    }
  }
  return out
}

/** Stores the model's distinct directories, children first, as an attacker would publish them. */
async function store(blobs: Blobs, dir: ModelDir, files: BlobRef[], refs = new Map<ModelDir, BlobRef>()): Promise<BlobRef> {
  const known = refs.get(dir)
  if (known) return known
  const entries: DirEntry[] = []
  for (const e of dir) {
    if (e.kind === "file") entries.push({ name: e.name, kind: "file", mode: e.mode, ref: files[e.file]! })
    else if (e.kind === "symlink") entries.push({ name: e.name, kind: "symlink", mode: 0o777, target: e.target })
    else entries.push({ name: e.name, kind: "dir", mode: e.mode, ref: await store(blobs, e.dir, files, refs) })
  }
  const ref = await putDir(blobs, entries)
  refs.set(dir, ref)
  return ref
}

describe("fetchDir on generated hostile trees (fast-check)", () => {
  let tmp: { path: string; remove(): Promise<void> }
  let blobs: Blobs
  let files: BlobRef[]
  let contents: Uint8Array[]
  beforeAll(async () => {
    tmp = await tempDir("df-tree-hostile-")
    blobs = await Blobs.open({ dir: join(tmp.path, "store") })
    contents = FILE_SIZES.map((size, i) => seededBytes(size, 40 + i))
    files = []
    for (const bytes of contents) files.push(await blobs.put(bytes))
  })
  afterAll(async () => {
    await blobs?.close()
    await unlockForRemoval(tmp.path)
    await tmp?.remove()
  })

  it(`produces exactly the model's expansion, or fails with TOO_LARGE naming an exceeded limit and leaves dest untouched (seed ${SEED}, up to ${RUNS} runs)`, async () => {
    let run = 0
    const outcomes = { written: 0, refused: 0 }
    await fc.assert(
      fc.asyncProperty(specArb, async (spec) => {
        const tree = model(spec)
        const root = await store(blobs, tree, files)
        const work = join(tmp.path, `run${run++}`)
        const dest = join(work, "dest")
        await mkdir(dest, { recursive: true })
        await writeFile(join(dest, "keep.txt"), "old")
        const size = measure(tree)
        const exceeded = [
          ...(size.entries > spec.limits.maxEntries ? ["tree entries"] : []),
          ...(size.height > spec.limits.maxDepth ? ["tree depth"] : []),
          ...(size.bytes > spec.limits.maxBytes ? ["tree bytes"] : []),
        ]
        const err = await fetchDir(blobs, root, dest, { limits: spec.limits }).then(
          () => undefined,
          (e: unknown) => e as { code?: string; what?: string },
        )
        try {
          if (exceeded.length > 0) {
            expect(err?.code, `model ${JSON.stringify(size)} exceeds ${exceeded.join(", ")}`).toBe("TOO_LARGE")
            expect(exceeded).toContain(err!.what)
            expect(await readdir(work)).toEqual(["dest"])
            expect(await readdir(dest)).toEqual(["keep.txt"])
            outcomes.refused++
          } else {
            expect(err, `model ${JSON.stringify(size)} is within ${JSON.stringify(spec.limits)}`).toBeUndefined()
            expect(await describeTree(dest)).toEqual(expand(tree, contents))
            expect(await readdir(work)).toEqual(["dest"])
            outcomes.written++
          }
        } finally {
          await unlockForRemoval(work)
          await rm(work, { recursive: true, force: true })
        }
      }),
      { seed: SEED, numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
    )
    console.log(`fetchDir hostile trees (seed ${SEED}): ${JSON.stringify(outcomes)}`)
    // the generator reaches both sides of the limits
    expect(outcomes.written).toBeGreaterThan(0)
    expect(outcomes.refused).toBeGreaterThan(0)
  }, 60_000)
})
