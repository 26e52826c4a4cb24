import { randomBytes } from "node:crypto"
import { constants, type FileHandle, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises"
import { join } from "node:path"
import { DiskFullError, StorageError } from "../storage/format/errors.ts"
import type { ChunkStore, ChunkWriteOptions, RangeReader } from "./chunk-store.ts"
import { AlignedStaging, isPageAligned, O_DIRECT, writeDirect } from "./direct-write.ts"

/** Below this a page-cache bypass saves too little to be worth a second code path. */
const DIRECT_MIN_BYTES = 256 * 1024

/** When chunk files are fsynced. `flush` (default): only at `flush()`; `always`: before every rename. */
export type Durability = "flush" | "always"

export interface FileChunkStoreOptions {
  /**
   * Whether writes that ask to bypass the page cache may use O_DIRECT (default true). False
   * writes every chunk buffered, as where the platform has no O_DIRECT or no page-aligned
   * memory can be had (`node --jitless`, a small `ulimit -v`).
   */
  directWrites?: boolean
}

/**
 * Chunk files written by each path, process-wide (tests, diagnostics): `direct` from a
 * page-aligned buffer as it is, `staged` through aligned staging, `buffered` through the page cache.
 */
export const chunkWriteStats = { direct: 0, staged: 0, buffered: 0 }

/**
 * Chunk files named by hash under `<dir>/chunks/<hh>/<hex>` (256 fan-out folders). A write
 * goes to `<dir>/tmp/<random>` and is renamed into place, so a reader (or a crash) never
 * sees a partial chunk; leftovers in tmp/ are removed on open.
 */
export class FileChunkStore implements ChunkStore {
  readonly #chunks: string
  readonly #tmp: string
  readonly #durability: Durability
  /** Files and folders written since the last sync, for flush(). */
  #dirty = new Set<string>()
  /** Staging for writes around the page cache; undefined until the first, or when the file system refuses them. */
  #staging: AlignedStaging | undefined
  #directRefused: boolean

  private constructor(dir: string, durability: Durability, options: FileChunkStoreOptions) {
    this.#chunks = join(dir, "chunks")
    this.#tmp = join(dir, "tmp")
    this.#durability = durability
    this.#directRefused = O_DIRECT === undefined || options.directWrites === false
  }

  static async open(dir: string, durability: Durability = "flush", options: FileChunkStoreOptions = {}): Promise<FileChunkStore> {
    const store = new FileChunkStore(dir, durability, options)
    await rm(store.#tmp, { recursive: true, force: true })
    await mkdir(store.#tmp, { recursive: true })
    await mkdir(store.#chunks, { recursive: true })
    // all 256 fan-out folders up front: a chunk write is then create, write, rename (no mkdir)
    await Promise.all(Array.from({ length: 256 }, (_, i) => mkdir(join(store.#chunks, i.toString(16).padStart(2, "0")), { recursive: true })))
    return store
  }

  #path(hex: string): string {
    return join(this.#chunks, hex.slice(0, 2), hex)
  }

  async has(hex: string): Promise<boolean> {
    return (await this.lengthOf(hex)) !== undefined
  }

  async lengthOf(hex: string): Promise<number | undefined> {
    try {
      return (await stat(this.#path(hex))).size
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw new StorageError("stat", { cause: err })
    }
  }

  async read(hex: string): Promise<Uint8Array | undefined> {
    const reader = await this.openRange(hex)
    if (reader === undefined) return undefined
    try {
      // one allocation of the exact size, filled by positional reads (readFile grows buffers)
      return await reader.read(0, reader.length)
    } catch (err) {
      throw new StorageError("read", { cause: err })
    } finally {
      await reader.close()
    }
  }

  /** One open file handle for the whole read (not an open per window). */
  async openRange(hex: string): Promise<RangeReader | undefined> {
    let fh: FileHandle
    try {
      fh = await open(this.#path(hex), constants.O_RDONLY)
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw new StorageError("open", { cause: err })
    }
    const { size } = await fh.stat()
    return {
      length: size,
      async read(offset, length) {
        const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)))
        let got = 0
        while (got < out.length) {
          const { bytesRead } = await fh.read(out, got, out.length - got, offset + got)
          if (bytesRead === 0) break
          got += bytesRead
        }
        return out.subarray(0, got)
      },
      async readInto(offset, targets) {
        let got = 0
        let rest = targets
        while (rest.length > 0) {
          const { bytesRead } = await fh.readv(rest as Uint8Array[], offset + got)
          if (bytesRead === 0) break
          got += bytesRead
          rest = advance(rest, bytesRead)
        }
        return got
      },
      close: () => fh.close(),
    }
  }

  async write(hex: string, bytes: Uint8Array, options: ChunkWriteOptions = {}): Promise<boolean> {
    const final = this.#path(hex)
    if (await this.has(hex)) return false
    const tmp = join(this.#tmp, `${hex.slice(0, 16)}-${randomBytes(6).toString("hex")}`)
    try {
      const direct = options.bypassPageCache === true && bytes.length >= DIRECT_MIN_BYTES && this.#canWriteDirect(bytes)
      if (!(direct && (await this.#writeDirect(tmp, bytes)))) await this.#writeBuffered(tmp, bytes)
      const folder = join(this.#chunks, hex.slice(0, 2))
      await rename(tmp, final).catch(async (err: NodeJS.ErrnoException) => {
        // the folder was removed behind our back: make it again
        if (err.code !== "ENOENT") throw err
        await mkdir(folder, { recursive: true })
        await rename(tmp, final)
      })
      if (this.#durability === "always") await fsyncDir(folder)
      else {
        this.#dirty.add(final)
        this.#dirty.add(folder)
      }
      return true
    } catch (err) {
      await rm(tmp, { force: true })
      if ((err as NodeJS.ErrnoException).code === "ENOSPC" || (err as NodeJS.ErrnoException).code === "EDQUOT") {
        throw new DiskFullError({ cause: err })
      }
      throw new StorageError("write", { cause: err })
    }
  }

  /** Direct I/O is on, and `bytes` can be written from as it is or through aligned staging (there is none where no page-aligned memory can be had). */
  #canWriteDirect(bytes: Uint8Array): boolean {
    return !this.#directRefused && (isPageAligned(bytes) || (this.#staging ??= new AlignedStaging()).aligned)
  }

  async #writeBuffered(path: string, bytes: Uint8Array): Promise<void> {
    const fh = await open(path, "w")
    try {
      let off = 0
      while (off < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, off, bytes.length - off)
        off += bytesWritten
      }
      if (this.#durability === "always") await fh.sync()
      chunkWriteStats.buffered++
    } finally {
      await fh.close()
    }
  }

  /** False (nothing written) when the file system refuses direct I/O; from then on writes are buffered. */
  async #writeDirect(path: string, bytes: Uint8Array): Promise<boolean> {
    let fh: FileHandle
    try {
      fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | O_DIRECT!, 0o644)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err
      this.#directRefused = true
      return false
    }
    try {
      const how = await writeDirect(fh, bytes, (this.#staging ??= new AlignedStaging()))
      if (this.#durability === "always") await fh.sync()
      chunkWriteStats[how]++
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err
      this.#directRefused = true
      return false
    } finally {
      await fh.close()
    }
  }

  async remove(hex: string): Promise<void> {
    await rm(this.#path(hex), { force: true })
    this.#dirty.delete(this.#path(hex))
  }

  async *list(): AsyncIterable<string> {
    for (const folder of await readdir(this.#chunks)) {
      for (const name of await readdir(join(this.#chunks, folder)).catch(() => [] as string[])) yield name
    }
  }

  async sync(): Promise<void> {
    const dirty = this.#dirty
    this.#dirty = new Set()
    for (const path of dirty) {
      try {
        const fh = await open(path, constants.O_RDONLY)
        try {
          await fh.sync()
        } finally {
          await fh.close()
        }
      } catch (err) {
        if (!isNotFound(err)) throw new StorageError("sync", { cause: err })
      }
    }
    await fsyncDir(this.#chunks)
  }

  async bytes(): Promise<number> {
    let n = 0
    for await (const hex of this.list()) n += (await this.lengthOf(hex)) ?? 0
    return n
  }

  async close(): Promise<void> {
    await rm(this.#tmp, { recursive: true, force: true })
  }
}

async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === "ENOENT"
}

/** The targets left after `n` bytes of them were filled (a short scatter read resumes here). */
function advance(targets: readonly Uint8Array[], n: number): readonly Uint8Array[] {
  let i = 0
  while (i < targets.length && n >= targets[i]!.length) n -= targets[i++]!.length
  if (i === targets.length) return []
  return n === 0 ? targets.slice(i) : [targets[i]!.subarray(n), ...targets.slice(i + 1)]
}
