import { chmod, lstat, mkdir, readdir, readlink } from "node:fs/promises"
import { dirname, join, resolve } from "node:path"
import { BlobRef } from "../storage/format/blob-ref.ts"
import { decodeDirManifest, type DirEntry, type DirManifest, encodeDirManifest } from "../storage/format/dir-manifest.ts"
import { BadRefError, throwIfAborted } from "../storage/format/errors.ts"
import { type Blobs, PART_OF_TREE } from "./blobs.ts"
import type { ReadSources } from "./mesh.ts"
import { forEachBounded } from "./concurrency.ts"
import { recoverDest, swapInto, tempSibling } from "./dir-swap.ts"
import { type OnProgress, throttled } from "./progress.ts"
import { checkLimit, resolveTreeLimits, type TreeLimits } from "./tree-limits.ts"
import { materializeTree } from "./tree-materialize.ts"
import { ManifestPrefetch } from "./tree-prefetch.ts"
import { LruMap, treeStats } from "./tree-stats.ts"

export type { DirEntry, DirManifest }
export { DEFAULT_TREE_LIMITS, type TreeLimits } from "./tree-limits.ts"

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
  /**
   * Bounds of the tree (defaults DEFAULT_TREE_LIMITS: 10M entries, depth 256, 1 TiB).
   * fetchDir checks them over the whole expanded tree before writing anything; storeDir
   * as it scans, so it never stores a tree fetchDir would refuse with the same limits.
   */
  limits?: TreeLimits
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
  const tree = await scan(root, { jobs, entries: 0, bytes: 0, limits: resolveTreeLimits(options.limits) }, 0, options.signal)
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

interface ScanState {
  readonly jobs: FileJob[]
  entries: number
  bytes: number
  readonly limits: Required<TreeLimits>
}

async function scan(path: string, state: ScanState, depth: number, signal?: AbortSignal): Promise<DirNode> {
  throwIfAborted(signal)
  checkLimit(state.limits, "maxDepth", depth)
  const st = await lstat(path)
  const node: DirNode = { mode: st.mode & 0o7777, children: [] }
  for (const name of (await readdir(path)).sort()) {
    const child = join(path, name)
    const cst = await lstat(child)
    if (cst.isSymbolicLink()) node.children.push({ name, kind: "symlink", mode: 0o777, target: await readlink(child) })
    else if (cst.isDirectory()) node.children.push({ name, kind: "dir", node: await scan(child, state, depth + 1, signal) })
    else if (cst.isFile()) {
      const job: FileJob = { path: child, size: cst.size }
      state.jobs.push(job)
      state.bytes += cst.size
      checkLimit(state.limits, "maxBytes", state.bytes)
      node.children.push({ name, kind: "file", mode: cst.mode & 0o7777, job })
    } else continue // sockets, FIFOs and devices are not content: skipped
    checkLimit(state.limits, "maxEntries", ++state.entries)
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

/**
 * Reads and checks one directory manifest (locally or over the mesh). `limits` bound this
 * manifest alone: its entry count (maxEntries) and the sum of its files' sizes (maxBytes).
 */
export async function readDirManifest(blobs: Blobs, ref: BlobRef | string, options: { signal?: AbortSignal; limits?: TreeLimits } = {}): Promise<DirManifest> {
  const manifest = await loadManifest(blobs, BlobRef.from(ref), options.signal)
  const limits = resolveTreeLimits(options.limits)
  checkLimit(limits, "maxEntries", manifest.entries.length)
  let bytes = 0
  for (const e of manifest.entries) if (e.kind === "file") bytes += e.ref.size
  checkLimit(limits, "maxBytes", bytes)
  return manifest
}

/** One manifest, decoded and checked; `sources` counts where its bytes came from. */
async function loadManifest(blobs: Blobs, ref: BlobRef, signal?: AbortSignal, sources?: ReadSources): Promise<DirManifest> {
  if (ref.kind !== "dir") throw new BadRefError(`expected a dir ref, got ${ref.kind}`)
  return decodeDirManifest(await blobs.get(ref, { ...(signal ? { signal } : {}), ...(sources ? { sources } : {}) }))
}

/** Entries of the decoded manifests kept by a walk (~200 bytes each): a directory named many times is decoded once. */
const DECODED_CACHE_ENTRIES = 65_536

/** Reads manifests through a small cache of decoded ones (bounded by their entries). */
function cachedLoader(
  blobs: Blobs,
  signal?: AbortSignal,
  sources?: ReadSources,
  cache = new LruMap<string, DirManifest>(DECODED_CACHE_ENTRIES, (m) => m.entries.length + 1),
  /** A read already under way elsewhere (the prefetcher's), to share. */
  pending?: (ref: BlobRef) => Promise<DirManifest> | undefined,
): (ref: BlobRef) => Promise<DirManifest> {
  return async (ref) => {
    const hit = cache.get(ref.hex)
    if (hit) return hit
    const read = () => loadManifest(blobs, ref, signal, sources)
    const m = await (pending?.(ref)?.catch(read) ?? read())
    cache.set(ref.hex, m)
    return m
  }
}

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
 * A subdirectory named many times is walked each time. Memory is one manifest per level
 * plus a bounded prefetch, whatever the tree's size. The limits (defaults
 * DEFAULT_TREE_LIMITS) are enforced as it goes: a walk cannot know the totals up front, so
 * it fails with TOO_LARGE when a running count (entries, bytes) or the depth passes a limit,
 * after yielding the entries before that point.
 */
export async function* walkDir(blobs: Blobs, root: BlobRef | string, options: { signal?: AbortSignal; limits?: TreeLimits } = {}): AsyncGenerator<TreeEntry> {
  const limits = resolveTreeLimits(options.limits)
  const { signal } = options
  const load = cachedLoader(blobs, signal)
  /** Manifests being read ahead, by hash: bounded, each taken once. */
  const ahead = new Map<string, Promise<DirManifest>>()
  const read = (ref: BlobRef): Promise<DirManifest> => {
    const p = ahead.get(ref.hex)
    ahead.delete(ref.hex)
    return p ?? load(ref)
  }
  // fetch the subdirectories' manifests ahead (bounded), so a deep tree over the mesh
  // costs about one round trip per level, not one per directory
  const readAhead = (manifest: DirManifest) => {
    for (const e of manifest.entries) {
      if (ahead.size >= PREFETCH_DIRS) break
      if (e.kind !== "dir" || ahead.has(e.ref.hex)) continue
      const p = load(e.ref)
      p.catch(() => {})
      ahead.set(e.ref.hex, p)
    }
  }
  let entries = 0
  let bytes = 0
  const first = await read(BlobRef.from(root))
  readAhead(first)
  const stack: Array<{ entries: readonly DirEntry[]; next: number; path: string }> = [{ entries: first.entries, next: 0, path: "" }]
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!
    if (top.next === top.entries.length) {
      stack.pop()
      continue
    }
    const entry = top.entries[top.next++]!
    checkLimit(limits, "maxEntries", ++entries)
    if (entry.kind === "file") checkLimit(limits, "maxBytes", (bytes += entry.ref.size))
    const path = top.path ? `${top.path}/${entry.name}` : entry.name
    const depth = stack.length - 1
    yield { path, depth, entry }
    if (entry.kind === "dir") {
      checkLimit(limits, "maxDepth", depth + 1)
      throwIfAborted(signal)
      const manifest = await read(entry.ref)
      readAhead(manifest)
      stack.push({ entries: manifest.entries, next: 0, path })
    }
  }
}

/**
 * Materializes a tree at `dest` atomically, in two passes. First a check that writes
 * nothing: every distinct manifest is fetched (in batches, about one round trip per
 * level) and checked (unsafe names, duplicates), and the expanded tree's entries, depth
 * and bytes are held to `limits` (TOO_LARGE naming the limit; a directory named many times
 * is fetched and counted once, then multiplied). Then the tree is written depth-first into a
 * temp sibling of `dest`, files fetched many at a time and created with O_EXCL so nothing is
 * ever written through a symlink, with memory bounded by the depth and a few groups of
 * files, not by the tree's size; then the temp tree replaces `dest` in one atomic exchange.
 * After a failure or a kill, `dest` is the old tree or the new one, and the next call
 * removes leftovers.
 */
export async function fetchDir(blobs: Blobs, root: BlobRef | string, dest: string, options: DirOptions = {}): Promise<void> {
  const rootRef = BlobRef.from(root)
  const target = resolve(dest)
  const { signal, sources } = options
  const limits = resolveTreeLimits(options.limits)
  await recoverDest(target)
  if (rootRef.kind !== "dir") throw new BadRefError(`expected a dir ref, got ${rootRef.kind}`)

  // pass 1: check the whole tree, writing nothing
  const prefetch = blobs.mesh
    ? new ManifestPrefetch(blobs.mesh, (ref, s) => loadManifest(blobs, ref, s, sources), rootRef, { maxEntries: limits.maxEntries, ...(signal ? { signal } : {}), ...(sources ? { sources } : {}) })
    : undefined
  // decoded manifests are kept (a bounded few) for the second pass: a small tree is decoded once
  const cache = new LruMap<string, DirManifest>(DECODED_CACHE_ENTRIES, (m) => m.entries.length + 1)
  let stats
  try {
    stats = await treeStats(rootRef, cachedLoader(blobs, signal, sources, cache, (ref) => prefetch?.take(ref)), limits, signal ? { signal } : {})
  } finally {
    await prefetch?.stop()
  }

  // pass 2: write it (every manifest is here now)
  const load = cachedLoader(blobs, signal, sources, cache)
  const rootManifest = await load(rootRef)
  const rootMode = 0o755
  const tmp = tempSibling(target)
  await mkdir(dirname(target), { recursive: true })
  await mkdir(tmp, { mode: 0o700 })
  try {
    const totals = { totalBytes: stats.bytes, totalItems: stats.files }
    const report = throttled(options.onProgress)
    let bytes = 0
    let items = 0
    await materializeTree(blobs, rootManifest, tmp, load, {
      ...(signal ? { signal } : {}),
      ...(sources ? { sources } : {}),
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      progress: (n, fileDone) => {
        bytes += n
        if (fileDone) items++
        report({ bytes, items, ...totals })
      },
    })
    await chmod(tmp, rootMode)
    throwIfAborted(signal)
    await swapInto(tmp, target)
    report({ bytes, items, ...totals }, true)
  } catch (err) {
    // removes the temp tree, read-only directories and all
    await recoverDest(target).catch(() => {})
    throw err
  }
}
