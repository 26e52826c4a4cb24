import { chmodSync, writeFileSync } from "node:fs"
import { chmod, lstat, mkdir, readdir, readlink, symlink } from "node:fs/promises"
import { dirname, join, resolve } from "node:path"
import { BlobRef } from "../storage/format/blob-ref.ts"
import {
  decodeDirManifest,
  DIR_MAX_DEPTH,
  type DirEntry,
  type DirManifest,
  encodeDirManifest,
  TREE_MAX_ENTRIES,
} from "../storage/format/dir-manifest.ts"
import { BadRefError, throwIfAborted, TooLargeError } from "../storage/format/errors.ts"
import { type Blobs, PART_OF_TREE } from "./blobs.ts"
import type { ReadSources } from "./mesh.ts"
import { forEachBounded } from "./concurrency.ts"
import { recoverDest, swapInto, tempSibling } from "./dir-swap.ts"
import { type OnProgress, throttled } from "./progress.ts"

export type { DirEntry, DirManifest }

export interface DirOptions {
  signal?: AbortSignal
  /** Bytes and files done so far (and totals when known). */
  onProgress?: OnProgress
  /** Files in flight (default 16 for storeDir, 64 for fetchDir). */
  concurrency?: number
  /** fetchDir: filled in with where the bytes came from (cache, disk, peers). */
  sources?: ReadSources
  /** storeDir: tags of the root ref (its files and subdirectories get none). */
  tags?: Record<string, string>
}

interface FileJob {
  readonly path: string
  readonly size: number
  ref?: BlobRef
}

interface DirNode {
  readonly mode: number
  readonly children: Array<{ name: string; kind: "file"; mode: number; job: FileJob } | { name: string; kind: "dir"; node: DirNode } | { name: string; kind: "symlink"; mode: number; target: string }>
}

/**
 * Stores a directory tree and returns its root ref (kind `dir`). Files become blobs (big
 * ones streamed with about one chunk of memory), symlinks are stored as links and never
 * followed, modes and empty directories are kept. Identical subtrees get identical refs,
 * so a second store of a slightly changed tree stores only what changed.
 */
export async function storeDir(blobs: Blobs, path: string, options: DirOptions = {}): Promise<BlobRef> {
  const root = resolve(path)
  const jobs: FileJob[] = []
  const tree = await scan(root, jobs, 0, options.signal)
  const totalBytes = jobs.reduce((n, j) => n + j.size, 0)
  const report = throttled(options.onProgress)
  let bytes = 0
  let items = 0
  await forEachBounded(
    jobs,
    options.concurrency ?? 16,
    async (job, signal) => {
      job.ref = await blobs.putFile(job.path, { signal, [PART_OF_TREE]: true })
      bytes += job.size
      items++
      report({ bytes, totalBytes, items, totalItems: jobs.length })
    },
    options.signal,
  )
  const ref = await storeNode(blobs, tree, { tags: options.tags })
  report({ bytes, totalBytes, items, totalItems: jobs.length }, true)
  return ref
}

async function scan(path: string, jobs: FileJob[], depth: number, signal?: AbortSignal): Promise<DirNode> {
  throwIfAborted(signal)
  if (depth > DIR_MAX_DEPTH) throw new TooLargeError("tree depth", depth, DIR_MAX_DEPTH)
  const st = await lstat(path)
  const node: DirNode = { mode: st.mode & 0o7777, children: [] }
  for (const name of (await readdir(path)).sort()) {
    const child = join(path, name)
    const cst = await lstat(child)
    if (cst.isSymbolicLink()) node.children.push({ name, kind: "symlink", mode: 0o777, target: await readlink(child) })
    else if (cst.isDirectory()) node.children.push({ name, kind: "dir", node: await scan(child, jobs, depth + 1, signal) })
    else if (cst.isFile()) {
      const job: FileJob = { path: child, size: cst.size }
      jobs.push(job)
      node.children.push({ name, kind: "file", mode: cst.mode & 0o7777, job })
    }
    // sockets, FIFOs and devices are not content: skipped
    if (jobs.length > TREE_MAX_ENTRIES) throw new TooLargeError("tree", jobs.length, TREE_MAX_ENTRIES)
  }
  return node
}

/** Stores a directory's manifest, subdirectories first; `root` only for the tree's root (the rest are parts of the tree). */
async function storeNode(blobs: Blobs, node: DirNode, root?: { tags: Record<string, string> | undefined }): Promise<BlobRef> {
  const entries: DirEntry[] = []
  for (const c of node.children) {
    if (c.kind === "file") entries.push({ name: c.name, kind: "file", mode: c.mode, ref: c.job.ref! })
    else if (c.kind === "symlink") entries.push({ name: c.name, kind: "symlink", mode: c.mode, target: c.target })
    else entries.push({ name: c.name, kind: "dir", mode: c.node.mode, ref: await storeNode(blobs, c.node) })
  }
  const ref = await blobs.store.putSingle(encodeDirManifest({ entries }), "dir", root ? { tags: root.tags } : { child: true })
  blobs.mesh?.advertise(ref)
  return ref
}

/** Reads and checks one directory manifest (locally or over the mesh). */
export async function readDirManifest(blobs: Blobs, ref: BlobRef | string, options: { signal?: AbortSignal } = {}): Promise<DirManifest> {
  const r = BlobRef.from(ref)
  if (r.kind !== "dir") throw new BadRefError(`expected a dir ref, got ${r.kind}`)
  return decodeDirManifest(await blobs.get(r, options))
}

/** Files per pipelined group in fetchDir, and groups in flight. */
const FILE_GROUP = 512
const GROUPS_IN_FLIGHT = 3

/** Files up to this size are fetched whole and written in one call. */
const SMALL_FILE_BYTES = 64 * 1024
/** The process umask (read once; restored at once). */
const UMASK = (() => {
  const m = process.umask(0)
  process.umask(m)
  return m
})()

/** Directory manifests fetched ahead during a walk. */
const PREFETCH_DIRS = 64

/** One entry of a tree walk: its path relative to the root ('/'-separated) and the entry. */
export interface TreeEntry {
  readonly path: string
  readonly depth: number
  readonly entry: DirEntry
}

/**
 * Walks a tree depth-first (parents before children) without writing anything, checking
 * every manifest on the way: build tools can inspect a tree before materializing it.
 */
export async function* walkDir(blobs: Blobs, root: BlobRef | string, options: { signal?: AbortSignal } = {}): AsyncGenerator<TreeEntry> {
  let count = 0
  async function* visit(ref: BlobRef, prefix: string, depth: number): AsyncGenerator<TreeEntry> {
    if (depth > DIR_MAX_DEPTH) throw new TooLargeError("tree depth", depth, DIR_MAX_DEPTH)
    const manifest = await (prefetched.get(ref.hex) ?? readDirManifest(blobs, ref, options))
    prefetched.delete(ref.hex)
    // fetch the subdirectories' manifests ahead (bounded), so a deep tree over the mesh
    // costs about one round trip per level, not one per directory
    for (const e of manifest.entries) {
      if (e.kind !== "dir" || prefetched.size >= PREFETCH_DIRS || prefetched.has(e.ref.hex)) continue
      const p = readDirManifest(blobs, e.ref, options)
      p.catch(() => {})
      prefetched.set(e.ref.hex, p)
    }
    for (const entry of manifest.entries) {
      if (++count > TREE_MAX_ENTRIES) throw new TooLargeError("tree", count, TREE_MAX_ENTRIES)
      const path = prefix ? `${prefix}/${entry.name}` : entry.name
      yield { path, depth, entry }
      if (entry.kind === "dir") yield* visit(entry.ref, path, depth + 1)
    }
  }
  const prefetched = new Map<string, Promise<DirManifest>>()
  yield* visit(BlobRef.from(root), "", 0)
}

/**
 * Materializes a tree at `dest` atomically. Every manifest is fetched and checked first
 * (unsafe names, duplicates, absurd sizes are refused before anything is written); files
 * are fetched many at a time into a temp sibling of `dest`, created with O_EXCL so nothing
 * is ever written through a symlink; links come last; then the temp tree replaces `dest` in
 * one atomic exchange. After a failure or a kill, `dest` is the old tree or the new one, and
 * the next call removes leftovers.
 */
export async function fetchDir(blobs: Blobs, root: BlobRef | string, dest: string, options: DirOptions = {}): Promise<void> {
  const rootRef = BlobRef.from(root)
  const target = resolve(dest)
  await recoverDest(target)
  const plan = await planTree(blobs, rootRef, options.signal)
  const rootMode = 0o755
  const tmp = tempSibling(target)
  await mkdir(dirname(target), { recursive: true })
  await mkdir(tmp, { mode: 0o700 })
  try {
    const files = plan.filter((e) => e.entry.kind === "file")
    const totalBytes = files.reduce((n, e) => n + (e.entry as { ref: BlobRef }).ref.size, 0)
    const report = throttled(options.onProgress)
    let bytes = 0
    let items = 0
    // directories first (parents precede children in the plan), writable until the end
    for (const e of plan) if (e.entry.kind === "dir") await mkdir(join(tmp, e.path), { mode: 0o700 })
    const progress = (n: number, fileDone: boolean) => {
      bytes += n
      if (fileDone) items++
      report({ bytes, totalBytes, items, totalItems: files.length })
    }
    // files go in groups: a group's small files arrive in batches (one round trip per few
    // hundred) while earlier groups are being written, so network and disk overlap
    const groups: TreeEntry[][] = []
    for (let i = 0; i < files.length; i += FILE_GROUP) groups.push(files.slice(i, i + FILE_GROUP))
    const perGroup = Math.max(1, Math.ceil((options.concurrency ?? 64) / GROUPS_IN_FLIGHT))
    await forEachBounded(
      groups,
      GROUPS_IN_FLIGHT,
      async (group, signal) => {
        const refs = group.map((e) => (e.entry as { ref: BlobRef }).ref)
        // bytes fetched in a batch are counted by ensureLocal; the rest where they are read
        const batched = new Set<string>()
        if (blobs.mesh) await blobs.mesh.ensureLocal(refs, { signal, fetched: batched, ...(options.sources ? { sources: options.sources } : {}) })
        const isSmall = (e: TreeEntry) => (e.entry as { ref: BlobRef }).ref.size <= SMALL_FILE_BYTES
        await Promise.all([
          writeSmallFiles(blobs, tmp, group.filter(isSmall), batched, options.sources, signal, progress),
          // large files are never batched: their bytes are counted where they are read
          forEachBounded(
            group.filter((e) => !isSmall(e)),
            perGroup,
            async (e, s) => {
              const entry = e.entry as Extract<DirEntry, { kind: "file" }>
              await writeLargeFile(blobs, entry.ref, join(tmp, e.path), entry.mode, s, options.sources, (n) => progress(n, false))
              progress(0, true)
            },
            signal,
          ),
        ])
      },
      options.signal,
    )
    for (const e of plan) {
      if (e.entry.kind === "symlink") await symlink(e.entry.target, join(tmp, e.path))
    }
    // modes of directories last, deepest first, so a read-only directory is filled before it closes
    for (const e of [...plan].reverse()) if (e.entry.kind === "dir") await chmod(join(tmp, e.path), e.entry.mode & 0o7777)
    await chmod(tmp, rootMode)
    throwIfAborted(options.signal)
    await swapInto(tmp, target)
    report({ bytes, totalBytes, items, totalItems: files.length }, true)
  } catch (err) {
    await recoverDest(target).catch(() => {})
    throw err
  }
}

/**
 * Every entry of a tree, level by level (parents before children), each level's directory
 * manifests fetched together: a tree costs about one batch round trip per level over the
 * mesh. Every manifest is checked before anything is written.
 */
async function planTree(blobs: Blobs, root: BlobRef, signal?: AbortSignal): Promise<TreeEntry[]> {
  const plan: TreeEntry[] = []
  let level: Array<{ ref: BlobRef; path: string }> = [{ ref: root, path: "" }]
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > DIR_MAX_DEPTH) throw new TooLargeError("tree depth", depth, DIR_MAX_DEPTH)
    await blobs.mesh?.ensureLocal(
      level.map((l) => l.ref),
      signal ? { signal } : {},
    )
    const manifests: DirManifest[] = new Array(level.length)
    await forEachBounded(
      level.keys(),
      32,
      async (i, s) => void (manifests[i] = await readDirManifest(blobs, level[i]!.ref, { signal: s })),
      signal,
    )
    const next: typeof level = []
    level.forEach((l, i) => {
      for (const entry of manifests[i]!.entries) {
        if (plan.length >= TREE_MAX_ENTRIES) throw new TooLargeError("tree", plan.length + 1, TREE_MAX_ENTRIES)
        const path = l.path ? `${l.path}/${entry.name}` : entry.name
        plan.push({ path, depth, entry })
        if (entry.kind === "dir") next.push({ ref: entry.ref, path })
      }
    })
    level = next
  }
  return plan
}

/** Longest the event loop is held by synchronous small-file writes before it is yielded. */
const WRITE_SLICE_MS = 4

/**
 * Small files are written with synchronous open(O_EXCL)+write+close, a few milliseconds at
 * a time: a promise-based write costs ~3× the CPU of the syscalls themselves (FileHandle
 * objects, three threadpool round trips), which bounded fetchDir on a fast filesystem, and
 * the time slice keeps the event loop (network, other groups) responsive on a slow one.
 * "wx" never follows or overwrites anything, symlinks included.
 */
async function writeSmallFiles(
  blobs: Blobs,
  tmp: string,
  entries: TreeEntry[],
  batched: ReadonlySet<string>,
  sources: ReadSources | undefined,
  signal: AbortSignal,
  progress: (bytes: number, fileDone: boolean) => void,
): Promise<void> {
  let slice = performance.now()
  for (const e of entries) {
    const entry = e.entry as Extract<DirEntry, { kind: "file" }>
    const from = batched.has(entry.ref.hex) ? undefined : sources
    const bytes = await blobs.get(entry.ref, { signal, ...(from ? { sources: from } : {}) })
    const path = join(tmp, e.path)
    writeFileSync(path, bytes, { flag: "wx", mode: entry.mode & 0o7777 })
    // the umask may have narrowed the stored mode
    if ((entry.mode & 0o7777 & UMASK) !== 0) chmodSync(path, entry.mode & 0o7777)
    progress(bytes.length, true)
    if (performance.now() - slice >= WRITE_SLICE_MS) {
      await new Promise((r) => setImmediate(r))
      throwIfAborted(signal)
      slice = performance.now()
    }
  }
}

/** A large file streamed to its place (getToFile: a .partial file, then rename) with about one chunk of memory. */
async function writeLargeFile(blobs: Blobs, ref: BlobRef, path: string, mode: number, signal: AbortSignal, sources: ReadSources | undefined, onBytes: (n: number) => void): Promise<void> {
  // getToFile lends the read's pooled chunk buffers to the file writes (no copy per chunk)
  let reported = 0
  await blobs.getToFile(ref, path, {
    signal,
    ...(sources ? { sources } : {}),
    onProgress: ({ bytes }) => {
      onBytes(bytes - reported)
      reported = bytes
    },
  })
  await chmod(path, mode & 0o7777)
}
