import { chmodSync, writeFileSync } from "node:fs"
import { chmod, mkdir, symlink } from "node:fs/promises"
import { join } from "node:path"
import type { BlobRef } from "../storage/format/blob-ref.ts"
import type { DirEntry, DirManifest } from "../storage/format/dir-manifest.ts"
import { throwIfAborted } from "../storage/format/errors.ts"
import type { Blobs } from "./blobs.ts"
import { forEachBounded } from "./concurrency.ts"
import type { ReadSources } from "./mesh.ts"
import { GroupPipeline } from "./tree-pipeline.ts"

/** Files per pipelined group, and groups in flight. */
const FILE_GROUP = 512
const GROUPS_IN_FLIGHT = 3
/** Links and read-only directories waiting for the files met before them. */
const MAX_PENDING_ACTIONS = 4096

/** Files up to this size are fetched whole and written in one call. */
const SMALL_FILE_BYTES = 64 * 1024
/** The process umask (read once; restored at once). */
const UMASK = (() => {
  const m = process.umask(0)
  process.umask(m)
  return m
})()

type FileEntry = Extract<DirEntry, { kind: "file" }>

interface FileJob {
  readonly path: string
  readonly entry: FileEntry
}

export interface MaterializeOptions {
  signal?: AbortSignal
  sources?: ReadSources
  concurrency?: number
  /** Bytes written (and whether a file is complete). */
  progress: (bytes: number, fileDone: boolean) => void
}

/**
 * A directory's mode is set when its subtree is complete. One that would keep its owner
 * from creating entries (no owner write or search bit), or that carries setuid/setgid/sticky
 * (setgid would change the group of files created after it), waits until every file of its
 * subtree is written; the others are set at once.
 */
export function needsDeferredMode(mode: number): boolean {
  return (mode & 0o300) !== 0o300 || (mode & 0o7000) !== 0
}

/**
 * Writes the tree under `tmp` (an empty directory) depth-first while files stream through
 * the grouped fetch pipeline: memory is one manifest per level (`load` re-reads them from
 * the local store) plus a few groups of files, never the whole tree.
 *
 * Nothing is ever written through a symlink. Names in a directory are unique (the decoder
 * refuses duplicates), so no entry lands on a link's path, and every path written has only
 * directories created here by mkdir as its prefixes (mkdir fails on anything existing);
 * small files are created with O_EXCL ("wx"). A large file is streamed to a temp name
 * beside it first (getToFile: `<name>.<random>.partial`), which a link could take: so a link
 * is created only once every file met before it is written. A file whose temp name could
 * equal the link's has a name that is a prefix of the link's, so it sorts before it in the
 * same directory, was met before it, and is done; files met after it live under other names
 * or in other directories.
 */
export async function materializeTree(blobs: Blobs, root: DirManifest, tmp: string, load: (ref: BlobRef) => Promise<DirManifest>, options: MaterializeOptions): Promise<void> {
  const writer = new GroupWriter(blobs, tmp, options)
  const pipeline = new GroupPipeline<FileJob>({
    groupSize: FILE_GROUP,
    inFlight: GROUPS_IN_FLIGHT,
    maxPendingActions: MAX_PENDING_ACTIONS,
    run: (group, signal) => writer.write(group, signal),
    ...(options.signal ? { signal: options.signal } : {}),
  })
  const stack: Array<{ entries: readonly DirEntry[]; next: number; path: string; mode: number }> = [{ entries: root.entries, next: 0, path: "", mode: -1 }]
  try {
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      if (top.next === top.entries.length) {
        stack.pop()
        if (top.mode >= 0) {
          const path = join(tmp, top.path)
          const mode = top.mode & 0o7777
          if (needsDeferredMode(mode)) await pipeline.after(() => chmod(path, mode))
          else await chmod(path, mode)
        }
        continue
      }
      const entry = top.entries[top.next++]!
      const path = top.path ? `${top.path}/${entry.name}` : entry.name
      if (entry.kind === "file") await pipeline.push({ path, entry })
      else if (entry.kind === "symlink") {
        const { target } = entry
        await pipeline.after(() => symlink(target, join(tmp, path)))
      } else {
        // writable by us until its subtree is complete
        await mkdir(join(tmp, path), { mode: 0o700 })
        throwIfAborted(options.signal)
        stack.push({ entries: (await load(entry.ref)).entries, next: 0, path, mode: entry.mode })
      }
    }
    await pipeline.finish()
  } finally {
    await pipeline.close()
  }
}

/** Writes groups of files: batched fetches of small ones, streamed large ones, each blob fetched once. */
class GroupWriter {
  /** Blobs a running group is fetching: another group with the same blob waits for it instead of fetching it again. */
  readonly #fetching = new Map<string, Promise<void>>()

  constructor(
    private readonly blobs: Blobs,
    private readonly tmp: string,
    private readonly options: MaterializeOptions,
  ) {}

  async write(group: FileJob[], signal: AbortSignal): Promise<void> {
    const { blobs, options } = this
    const small = group.filter((j) => j.entry.ref.size <= SMALL_FILE_BYTES)
    const large = group.filter((j) => j.entry.ref.size > SMALL_FILE_BYTES)
    // bytes fetched in a batch are counted by ensureLocal; the rest where they are read
    const batched = new Set<string>()
    if (blobs.mesh) {
      const mine = new Map<string, BlobRef>()
      const others: Array<Promise<void>> = []
      for (const j of small) {
        const hex = j.entry.ref.hex
        const theirs = this.#fetching.get(hex)
        if (theirs && !mine.has(hex)) others.push(theirs)
        else mine.set(hex, j.entry.ref)
      }
      const fetched = blobs.mesh.ensureLocal([...mine.values()], { signal, fetched: batched, ...(options.sources ? { sources: options.sources } : {}) })
      const settled = fetched.then(() => {}, () => {})
      for (const hex of mine.keys()) this.#fetching.set(hex, settled)
      try {
        await Promise.all([fetched, ...others])
      } finally {
        for (const hex of mine.keys()) if (this.#fetching.get(hex) === settled) this.#fetching.delete(hex)
      }
    }
    const perGroup = Math.max(1, Math.ceil((options.concurrency ?? 64) / GROUPS_IN_FLIGHT))
    await Promise.all([
      writeSmallFiles(blobs, this.tmp, small, batched, options.sources, signal, options.progress),
      // large files are never batched: their bytes are counted where they are read
      forEachBounded(large, perGroup, (j, s) => this.#writeLarge(j, s), signal),
    ])
  }

  /** A large file; when the same blob is being streamed for another path, after that one (then it is read here). */
  async #writeLarge(job: FileJob, signal: AbortSignal): Promise<void> {
    const hex = job.entry.ref.hex
    let theirs: Promise<void> | undefined
    while ((theirs = this.#fetching.get(hex)) !== undefined) await theirs
    const mine = writeLargeFile(this.blobs, job.entry.ref, join(this.tmp, job.path), job.entry.mode, signal, this.options.sources, (n) => this.options.progress(n, false))
    const settled = mine.then(() => {}, () => {})
    this.#fetching.set(hex, settled)
    try {
      await mine
    } finally {
      if (this.#fetching.get(hex) === settled) this.#fetching.delete(hex)
    }
    this.options.progress(0, true)
  }
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
  jobs: FileJob[],
  batched: ReadonlySet<string>,
  sources: ReadSources | undefined,
  signal: AbortSignal,
  progress: (bytes: number, fileDone: boolean) => void,
): Promise<void> {
  let slice = performance.now()
  for (const { path: rel, entry } of jobs) {
    const from = batched.has(entry.ref.hex) ? undefined : sources
    const bytes = await blobs.get(entry.ref, { signal, ...(from ? { sources: from } : {}) })
    const path = join(tmp, rel)
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
